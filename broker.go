package runnel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/callstack"
	"github.com/runnel/runnel/internal/isnil"
	"github.com/runnel/runnel/internal/lockedlog"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
)

// Config configures a Broker. The zero value is an in-memory broker with
// Kafka's topic defaults, but for durability: a topic fsyncs before it
// acknowledges (log.SyncAlways), where Kafka's defaults leave flushing to
// the operating system (log.SyncNever). Open copies it.
type Config struct {
	// Dir is where the broker keeps its data.
	//
	// "" keeps it in memory: a vfs.NewMem file system that lives as long
	// as the Broker. With FS set, "" keeps it in "/runnel" on FS, for a
	// vfs.MemFS of the caller's, which it can then crash. With the OS's
	// file system, Open refuses an empty Dir.
	//
	// On disk, a relative Dir is taken against the working directory at
	// Open: a later change of the working directory does not move it.
	//
	// The broker owns it. Open removes the directories named
	// <topic>-<partition> that no topic of its claims (what a crash during
	// DeleteTopic leaves), if they hold nothing but a partition log's
	// files. A directory of such a name that holds anything else is never
	// removed: Open leaves it (and logs a warning), and a CreateTopic or
	// CreatePartitions whose partition it would be fails with
	// log.ErrNotLogDir.
	//
	// Its own files are runnel.lock (locked, never written),
	// producer-ids, the topics directory, and a runnel.tmp in either of
	// the two directories while it replaces a topic's record or the
	// producer-id counter. A user's runnel.tmp there is overwritten, and
	// Open removes one, as a failed write's. A user's topics file, or a
	// producer-ids that holds no counter, makes Open fail. Still, give the
	// broker a directory of its own.
	Dir string
	// FS overrides the file system (tests pass a vfs.MemFS to crash it).
	// Default: vfs.OS when Dir is set. A nil pointer (a nil *vfs.MemFS) is
	// not the default: Open refuses it.
	//
	// The broker calls its methods (and a vfs.WithFaults injector's
	// MaybeError) holding a partition's lock or the admin token. Code of the
	// application's there must not call the broker and wait for it: a
	// Produce to the partition whose file it is, a DeleteTopic or a config
	// change of its topic may wait for the operation until its ctx ends, and
	// Close for ever. Start such a call on a goroutine of its own instead, to
	// race the operation.
	FS vfs.FS
	// TopicDefaults are the broker-wide defaults for topic configs: a
	// topic's zero fields take these, and these zero fields Kafka's. A
	// change that makes a stored topic's config invalid (a default
	// MinCompactionLag above a topic's MaxCompactionLag) makes Open fail
	// with a *TopicConfigError.
	TopicDefaults log.Config
	// AutoCreateTopics creates a topic the first time a client names it,
	// with DefaultPartitions partitions, as Kafka's
	// auto.create.topics.enable does. A client names it with a producer
	// writing to it, a consumer's AssignTopic, or any call of Partitions.
	//
	// Default off (Kafka's is on): a misspelt topic name fails with
	// ErrUnknownTopic rather than creating a topic.
	//
	// Each topic so made stays, with its memory (see CreateTopic), until
	// DeleteTopic. With topic names from outside your code, their number
	// is bounded by nothing else.
	AutoCreateTopics bool
	// DefaultPartitions is Kafka's num.partitions: the partition count of
	// auto-created topics, and of a CreateTopic that asks for -1 (KIP-464).
	// Default 1; Open refuses a negative one, or one above math.MaxInt32
	// (ErrInvalidPartitions).
	DefaultPartitions int
	// MaintenanceInterval is how often retention, compaction and flush.ms
	// run (and producer ids expire), and how often each partition's recovery
	// point is checkpointed at the offset fsynced so far (Kafka's
	// log.flush.offset.checkpoint.interval.ms). After a crash, records
	// fsynced before the last run are never cut, and those since are cut if
	// they went bad on disk, as Kafka cuts them (see log.Log.Maintain).
	//
	// Default (0 or negative) 30 s, more often than Kafka's: its
	// log.flush.offset.checkpoint.interval.ms is 60 s, and its
	// log.retention.check.interval.ms, which runs retention, 5 minutes. At
	// least 1 ms, as Kafka's: Open refuses a shorter one
	// (log.ErrInvalidConfig), a 5 meant as seconds, say.
	MaintenanceInterval time.Duration
	// ProducerIDExpiration is Kafka's producer.id.expiration.ms: how long
	// a partition remembers an idempotent producer id that has appended
	// nothing (log.Options.ProducerExpiration). Default 1 day; negative means
	// forever.
	//
	// It counts from the id's last append by the broker's clock, not, as in
	// Kafka, from its last batch's timestamp. An append that the clock has
	// since stepped back past (an NTP step, a VM restored) counts, after a
	// restart or a config change (which reopens the logs), as made then.
	// (Kafka keeps the id until the clock passes the batch's timestamp
	// again.)
	//
	// Until then an id takes about 115 bytes of heap in each partition it
	// wrote to (with one batch remembered; about 350 with five, the most),
	// and nothing else bounds the number of ids, as in Kafka. Clients that
	// take a new id for each producer they make (a producer for each request,
	// say) hold that much for each for this long.
	ProducerIDExpiration time.Duration
	// CleanerMapBytes bounds the log cleaner's key map, as Kafka's
	// log.cleaner.dedupe.buffer.size (log.Options.CleanerMapBytes).
	//
	// The maintenance compacts one partition at a time (the broker's own
	// and Maintain calls take turns), so this is the cleaner's memory for
	// the whole broker.
	//
	//   - Default (0): log.DefaultCleanerMapBytes, 128 MiB.
	//   - At least log.MinCleanerMapBytes (48: one key a pass).
	//   - More than log.MaxCleanerMapBytes (2 GiB - 1, Kafka's cap) counts
	//     as that.
	CleanerMapBytes int64
	// FetchMaxBytes is Kafka's broker fetch.max.bytes: the most bytes of
	// batches a fetch answers, whatever its MaxBytes. Default (0)
	// DefaultFetchMaxBytes, Kafka's 55 MiB; at least MinFetchMaxBytes (1024,
	// Kafka's minimum): Open refuses a smaller one, or a negative one
	// (log.ErrInvalidConfig).
	//
	// A Fetch takes min(its MaxBytes, or 50 MiB when it sets none,
	// FetchMaxBytes) as its request's limit, as Kafka's broker takes
	// min(max_bytes, fetch.max.bytes). It takes at most that as its MinBytes
	// (Kafka's min(min_bytes, max_bytes, fetch.max.bytes)). The first batch
	// of the first partition with data still comes whole, whatever its size
	// (KIP-74).
	//
	// On the OS's file system a fetch reads its batches onto the heap (see
	// Broker.Fetch), so this bounds what one fetch allocates, where a
	// MaxBytes from outside your code would choose it. A consumer's
	// consumer.FetchMaxBytes stays the client's own limit, as in Kafka.
	FetchMaxBytes int
	// Clock tells the time to the logs (retention, timestamps). Default the
	// system clock. Open refuses a nil pointer as Clock. Its wall time
	// counts, as in Kafka: see log.Clock for what a step of the system clock
	// does.
	//
	// A produced record's CreateTime is held against it (log.Config's
	// TimestampAfterMax, an hour by default, and TimestampBeforeMax). So a
	// Clock set far behind the time the producer stamps records with
	// (time.Now, by default) has those records refused with
	// log.ErrInvalidTimestamp.
	//
	// The broker's MaintenanceInterval and a fetch's MaxWait, and the
	// producer's and consumer's waits (Linger, DeliveryTimeout,
	// RetryBackoff), run on Go's monotonic timers instead, which neither
	// Clock nor a step moves.
	//
	// The logs call its Now holding a partition's lock, or the admin token:
	// it must return at once and must not call the broker (see log.Clock).
	Clock log.Clock
	// Logger receives the broker's logs. Default: none.
	//
	// A partition's maintenance failure is logged as an error when it
	// begins or changes, not again each MaintenanceInterval while it lasts
	// (a fenced partition's lasts until the broker opens again). So are,
	// at Warn, a segment roll that fails at every produce that would roll,
	// and a segment that a timestamp in the future keeps past retention.ms
	// (at Debug while they last).
	//
	// A line about a partition names it as the producer's and consumer's
	// lines do, topic= and partition= (its number); its log's lines give
	// its directory too (dir=).
	//
	// Its handler runs on the goroutine that logs, or on one that hands on
	// the lines logged meanwhile:
	//
	//   - a caller's (Produce, an admin call, Close);
	//   - the broker's maintenance goroutine;
	//   - one of the broker's that fsyncs an append whose producer stopped
	//     waiting;
	//   - a partition's log's that fsyncs appends apart from their waiter
	//     (on any FS but the bare memory one, for a caller whose ctx may
	//     end: log.Options.Go).
	//
	// The handler may call the broker's admin methods (CreateTopic,
	// Topics...) and produce, also to the partition whose line it is, as
	// no line is handed on under a lock or token of the broker's:
	//
	//   - the broker logs its own lines once it has given the admin token
	//     back;
	//   - an admin call hands on then too the lines of the partitions' logs
	//     it opened (their recovery, also a retry of a failed reopen) or
	//     closed (a reopen's, a deletion's);
	//   - Close hands on those of the logs it closes once it is done (a
	//     handler's Close then returns);
	//   - a partition's log hands on its lines (rolls, retention,
	//     compaction, failures) once it has released its locks (see
	//     log.Options.Logger);
	//   - a partition's maintenance, the broker's own or a Maintain call's,
	//     hands on its lines (retention, compaction, expired producer ids,
	//     and the retry of a reopen after a config change that failed:
	//     "partition reopened" and the new log's recovery) once it has
	//     given the maintenance token back.
	//
	// The handler may call Close on any line, also on one a goroutine of
	// the broker's hands on: the maintenance goroutine, or one that fsyncs
	// an append, the broker's or a partition's log's, with their own lines
	// or a concurrent call's. That Close returns without waiting for the
	// goroutine it runs on, which ends once the handler has returned,
	// touching no log. Any other Close returns only once those goroutines
	// have handed their lines on: no line of theirs reaches the handler
	// after it. So the handler must not wait for another goroutine's
	// Close.
	//
	// Close tells the goroutine it runs on by its stack, not by its
	// broker: called on a line of another broker's goroutine, it returns
	// without waiting for this broker's either.
	//
	// Nor may the handler end one of the broker's goroutines with
	// runtime.Goexit (t.FailNow, t.Fatal or a failing require assertion in
	// a test's handler): the program then stops, saying so, as for a panic
	// there. On a caller's goroutine (a test's own) the Goexit ends that
	// goroutine as anywhere else.
	//
	// A caller's goroutine may be a producer's: a producer.Producer sends
	// its requests, and runs its promises, on goroutines of its own. A
	// handler that ships the lines to a topic through a producer ships
	// them as a promise may produce (see producer.Producer): with
	// TryProduce, not ProduceSync or Flush. Those may wait for the very
	// goroutine that runs the handler, inside its request. A ProduceSync
	// whose record goes to that partition waits until its ctx ends or the
	// producer's Close, then fails with producer.ErrMaybeWritten.
	//
	// Only the handler's Enabled is asked while the broker or a log holds
	// a lock (a line of a level it does not want is dropped at once, not
	// queued): Enabled must not call the broker.
	//
	// One log's lines reach the handler in the order it logged them (see
	// log.Options.Logger); lines of different logs, or of the broker and a
	// log, need not. Across a config change's reopen, the new log's first
	// lines may come before the old log's last, which a maintenance round
	// still holds.
	Logger *slog.Logger
}

// DefaultFetchMaxBytes is the default of Config.FetchMaxBytes: 55 MiB,
// Kafka's fetch.max.bytes.
const DefaultFetchMaxBytes = 55 << 20

// MinFetchMaxBytes is the smallest Config.FetchMaxBytes, Kafka's minimum
// of fetch.max.bytes.
const MinFetchMaxBytes = 1024

// Broker is one node: its topics and their partitions. All methods are
// safe for concurrent use. A Broker is made by Open; a zero Broker (one
// not made by Open) is closed: its methods answer ErrClosed.
type Broker struct {
	cfg  Config
	fs   vfs.FS
	root string
	lock io.Closer

	// admin (a one-token semaphore, so that waiting for it heeds a ctx)
	// serializes the admin calls (CreateTopic, DeleteTopic,
	// AlterTopicConfig, CreatePartitions, an auto-create) and the topic
	// records they write; it is held across their file I/O, which
	// produce and fetch never wait for.
	admin chan struct{}
	// pids (another such token) serializes InitProducerID's writes of
	// the producer-id counter, apart from the admin calls: a new
	// idempotent producer's first records do not wait for a config
	// change's reopen of another topic's logs. Close takes it after
	// admin, before it releases the directory.
	pids    chan struct{}
	nextPID int64 // pids
	// adminLogs holds the lines of the logs an admin call opens (their
	// recovery, "log created"), made by its first logOptions, until
	// unlockAdmin: the Logger's handler may call the admin methods, and
	// produce to a partition an admin call reopens (admin).
	adminLogs *lockedlog.Held
	// adminHolds are the releases of the HoldLines (log.Log) an admin
	// call took on the logs whose partitions' locks it took, to close
	// them (a reopen, a deletion), run by unlockAdmin once the token is
	// given back: the lines of their Close, and those of concurrent calls
	// (left to the lock's holder), are handed on then, not as the call
	// releases the locks under the token, also when it gives up (admin).
	adminHolds []func()
	// marked names the topics whose deletion marker (see deletedSuffix)
	// may be left in <Dir>/topics: one whose removal failed, at Open or in
	// DeleteTopic. CreateTopic of such a name removes it before it writes
	// the topic's record, so that no marker outlives the record made
	// after it (admin).
	marked map[string]bool
	// reopenLogs is the adminLogs of an UpdateTopicConfig under way (nil
	// when none is), for the open of a partition's reopen to log to,
	// whoever runs it: a reopen that failed is tried again by a later
	// call, under its admin token, whose lines must wait for that token
	// as the call's own do, not go through the released Held of the call
	// whose reopen failed; the maintenance's retry, which holds no token,
	// finds nil, or the Held of a call under way, whose lines then wait
	// for that call.
	reopenLogs atomic.Pointer[lockedlog.Held]
	// maintLogs is the Held of a partition's maintenance under way while
	// it retries a failed reopen (nil otherwise: set and cleared holding
	// the maint token), for that open to log to: its lines (the new
	// log's recovery) wait until the maintenance has released the
	// partition's lock and given the token back.
	maintLogs atomic.Pointer[lockedlog.Held]

	// maint (a one-token semaphore) lets one partition's maintenance run
	// at a time, the broker's own and Maintain calls' alike: a compaction
	// holds a key map of up to CleanerMapBytes, which is the cleaner's
	// memory for the whole broker only if compactions never overlap.
	maint chan struct{}
	// maintFrom is where the next Maintain call begins its pass: set by
	// a call that its ctx cut short (see Maintain), under maintFromMu.
	maintFromMu sync.Mutex
	maintFrom   maintCursor

	// mu guards topics, and is held only to read or replace entries:
	// produce and fetch look their partition up under it. A *log.Topic in
	// the map is never modified: an admin call replaces it.
	mu     sync.RWMutex
	topics map[string]*log.Topic

	closed    atomic.Bool
	closeDone chan struct{}   // closed when the first Close returns
	ctx       context.Context // cancelled by Close: stops maintenance and waits
	cancel    context.CancelFunc
	// wg counts the broker's goroutines: maintenance (see maintainer),
	// and the fsyncs of appends whose producer stopped waiting
	// (syncLater), while they work, not while they hand lines on. bgMu
	// orders their start against Close's wait for them.
	wg   sync.WaitGroup
	bgMu sync.Mutex
	// later holds the state of each partition's syncLater goroutine
	// (bgMu): one a partition at most.
	later map[*log.Partition]*laterSync
	// handing counts those goroutines while they hand lines on, out of
	// wg, and the partitions' logs' goroutines (goLog): Close waits for
	// them last (see waitLines). A goroutine joins it before it leaves
	// wg, and a log's before the log's Close returns, so that once
	// Close's wait for wg is over and every log is closed, handing only
	// goes down.
	handing sync.WaitGroup
}

// Open starts a broker on cfg.Dir (or in memory), reopening every topic
// found there. Each partition's log recovers as package [log] describes.
//
// Open is OpenContext(context.Background(), cfg), which cannot be cut
// short. A service that must be able to stop during startup calls
// [OpenContext].
//
// After a clean Close, Open is quick: it reads checkpoints. After a crash
// it rescans, in each partition, the segment that holds the recovery point
// and those after it (up to segment.bytes each). That takes as long as
// reading those bytes: up to eight partitions at once on the operating
// system's file system (Config.FS nil or vfs.OS), one after another on any
// other.
//
// Errors:
//
//   - an error matching vfs.ErrLocked when another process, or another
//     Broker of this one not yet closed, has the directory open;
//   - [ErrInvalidPartitions] for a negative DefaultPartitions (or one above
//     math.MaxInt32);
//   - [log.ErrInvalidConfig] for bad TopicDefaults, a nil pointer as FS or
//     Clock, a MaintenanceInterval below 1 ms, a CleanerMapBytes below
//     log.MinCleanerMapBytes, a FetchMaxBytes below MinFetchMaxBytes
//     (negative included), or an empty Dir with the operating system's FS
//     (vfs.OS, or a wrapper of it);
//   - a [*TopicConfigError] (matching log.ErrInvalidConfig, naming the
//     topic and the fields) for a stored topic whose config TopicDefaults
//     make invalid;
//   - [ErrCorruptMetadata] (naming the file) for a topic record or producer
//     id counter that cannot be read back;
//   - [ErrNewerMetadata] for a topic record a newer runnel wrote;
//   - log.Open's errors from recovering a partition: record.ErrCorrupt for
//     corrupt acknowledged data, log.ErrNotLogDir, log.ErrBadCheckpoint;
//   - file system errors.
func Open(cfg Config) (*Broker, error) {
	return OpenContext(context.Background(), cfg)
}

// OpenContext is Open, cut short when ctx ends (a SIGTERM during a long
// recovery), as net.Dialer.DialContext is net.Dial. It looks at ctx
// before each partition, and each partition's recovery looks at it
// between segments and every few MiB it reads (see log.OpenContext).
// Cut short, it closes the logs it opened, releases the directory's lock
// (an Open of it may follow at once) and returns; what recovery had not
// finished is left for the next Open, which recovers it in full: nothing
// acknowledged is lost.
//
// ctx bounds the opening only: once OpenContext has returned the broker,
// ctx's end does nothing to it (Close stops it).
//
// Errors: Open's; an error matching ctx.Err() when ctx ended (before any
// other error, when ctx had ended already).
func OpenContext(ctx context.Context, cfg Config) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runnel: opening %q: %w", cfg.Dir, err)
	}
	if cfg.DefaultPartitions == 0 {
		cfg.DefaultPartitions = 1
	} else if cfg.DefaultPartitions < 0 || cfg.DefaultPartitions > math.MaxInt32 {
		return nil, fmt.Errorf("%w: DefaultPartitions %d", ErrInvalidPartitions, cfg.DefaultPartitions)
	}
	if cfg.MaintenanceInterval <= 0 {
		cfg.MaintenanceInterval = 30 * time.Second
	} else if cfg.MaintenanceInterval < time.Millisecond {
		return nil, fmt.Errorf("%w: MaintenanceInterval %v, at least 1ms", log.ErrInvalidConfig, cfg.MaintenanceInterval)
	}
	if cfg.CleanerMapBytes != 0 && cfg.CleanerMapBytes < log.MinCleanerMapBytes {
		return nil, fmt.Errorf("%w: CleanerMapBytes %d, at least %d", log.ErrInvalidConfig, cfg.CleanerMapBytes, log.MinCleanerMapBytes)
	}
	if cfg.FetchMaxBytes == 0 {
		cfg.FetchMaxBytes = DefaultFetchMaxBytes
	} else if cfg.FetchMaxBytes < MinFetchMaxBytes {
		return nil, fmt.Errorf("%w: FetchMaxBytes %d, at least %d", log.ErrInvalidConfig, cfg.FetchMaxBytes, MinFetchMaxBytes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	} else if h := cfg.Logger.Handler(); h != slog.DiscardHandler {
		cfg.Logger = slog.New(goexitGuard{next: h})
	}
	// A nil pointer in FS or Clock is a field meant and not set: taken as
	// unset, FS would be the disk where a memory FS was meant.
	if cfg.FS != nil && isnil.Value(cfg.FS) {
		return nil, fmt.Errorf("%w: Config.FS is a nil %T", log.ErrInvalidConfig, cfg.FS)
	}
	if cfg.Clock != nil && isnil.Value(cfg.Clock) {
		return nil, fmt.Errorf("%w: Config.Clock is a nil %T", log.ErrInvalidConfig, cfg.Clock)
	}
	if cfg.Clock == nil {
		cfg.Clock = log.SystemClock{}
	}
	if err := cfg.TopicDefaults.Validate(); err != nil {
		return nil, fmt.Errorf("runnel: Config.TopicDefaults: %w", err)
	}
	b := &Broker{cfg: cfg, fs: cfg.FS, root: cfg.Dir, topics: map[string]*log.Topic{}, marked: map[string]bool{}, admin: make(chan struct{}, 1), pids: make(chan struct{}, 1), maint: make(chan struct{}, 1), closeDone: make(chan struct{})}
	switch {
	case b.fs == nil && b.root == "":
		b.fs, b.root = vfs.NewMem(), "/runnel"
	case b.fs == nil:
		b.fs = vfs.OS
	case b.root == "" && vfs.Unwrap(b.fs) == vfs.OS:
		// "/runnel" is for a memory FS; on the OS's it is the disk's root.
		return nil, fmt.Errorf("%w: Config.Dir is empty with the operating system's file system (Config.FS): name the directory", log.ErrInvalidConfig)
	case b.root == "":
		b.root = "/runnel"
	}
	if vfs.Unwrap(b.fs) == vfs.OS && !filepath.IsAbs(b.root) {
		// As Kafka's log dirs (getAbsoluteFile): the directory locked
		// now, whatever the process's working directory is later.
		abs, err := filepath.Abs(b.root)
		if err != nil {
			return nil, fmt.Errorf("runnel: opening %s: %w", b.root, err)
		}
		b.root = abs
	}
	// Durably: a topic's record in topics/ must not vanish with a
	// directory entry that was never synced.
	if err := vfs.MkdirAllDurable(b.fs, filepath.Join(b.root, topicsDir), 0o755); err != nil {
		return nil, fmt.Errorf("runnel: opening %s: %w", b.root, err)
	}
	lock, err := b.fs.Lock(filepath.Join(b.root, lockFile))
	if err != nil {
		return nil, fmt.Errorf("runnel: opening %s: %w", b.root, err)
	}
	b.lock = lock
	opened := false
	defer func() {
		if !opened {
			// Also when the Logger's handler panics, or ends the
			// goroutine, on a line of the recovery: the directory is not
			// left locked for the rest of the process, nor the logs open.
			defer lock.Close()
			b.closeTopics(nil)
		}
	}()
	if err := b.load(ctx); err != nil {
		return nil, err
	}
	opened = true
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(1)
	go b.maintain()
	return b, nil
}

// Close stops the broker, in this order:
//
//  1. its goroutines: maintenance, and the fsyncs it makes of appends
//     whose producer stopped waiting;
//  2. every partition's log, cleanly, so the next Open is quick (on the
//     operating system's file system several at once, see docs/details.md
//     "Many partitions");
//  3. the directory lock.
//
// It returns once its goroutines, and the logs' (an fsync run apart from
// its waiter), have handed their last lines on to [Config].Logger's
// handler. The exception is a Close that a handler calls on such a line,
// this broker's or another broker's (an application's handler of broker
// A calling B.Close): it returns without waiting for them, and B's lines
// may still reach B's handler after it (see Config.Logger).
//
// Errors: the errors.Join of the partitions' log.Log.Close errors (file
// system errors of their closing fsyncs and checkpoints) and the lock's
// release; nil for a second call. The broker is closed all the same:
// should a partition's close panic or call runtime.Goexit (an FS's, a
// Clock's), that goes on to the caller once the others are closed (see
// PanicError), the directory unlocked.
//
// It is idempotent. A second call returns once the first has closed the
// broker. Afterwards every method returns [ErrClosed], and the broker
// holds none of its topics (an in-memory broker's records go with them),
// though a closed client or a test's cleanup still references it.
//
// Close takes no ctx: it waits for the file operations under way (a write
// or fsync is not cut short), so on a disk that hangs it returns once the
// disk answers. The calls waiting behind such an operation (for the
// partition's log, or its reopen) end with their ctx, which a producer's
// or consumer's Close cancels.
//
// As Close begins, these end with ErrClosed, changing nothing:
//
//   - an admin call waiting for a partition's lock (DeleteTopic, a config
//     change);
//   - the calls waiting for another's admin call (CreateTopic, say, or an
//     auto-create) or another's write of the producer-id counter
//     (InitProducerID).
//
// A zero Broker (one not made by Open) is closed: its methods answer
// ErrClosed, and Close nil.
func (b *Broker) Close() error {
	if b.admin == nil {
		return nil // a zero Broker
	}
	if b.closed.Swap(true) {
		<-b.closeDone // closed already, or closing: wait for the first Close
		b.waitLines()
		return nil
	}
	// The lines of the logs Close closes go out once it is done (and
	// has given the admin token and mu back): a handler may call Close
	// on them, which waits for closeDone.
	var holds []func()
	defer func() {
		close(b.closeDone)
		releaseAll(holds)
		b.waitLines()
	}()
	if testHookCloseMarked != nil {
		testHookCloseMarked()
	}
	b.bgMu.Lock() // syncLater sees closed from here on: no goroutine starts
	b.cancel()
	b.bgMu.Unlock()
	b.wg.Wait()
	b.admin <- struct{}{} // let an admin call in flight finish
	defer b.unlockAdmin()
	b.pids <- struct{}{} // and a write of the producer-id counter
	defer func() { <-b.pids }()
	b.mu.Lock()
	defer b.mu.Unlock()
	closed := false
	defer func() {
		if !closed {
			// A partition's close panicked, or ended the goroutine
			// (runtime.Goexit), and that goes on to the caller: the
			// directory is unlocked all the same, and the storage let go
			// of, as a second Close returns at once and would leave the
			// directory locked for the rest of the process.
			_ = b.lock.Close()
			b.release()
		}
	}()
	err := b.closeTopics(&holds)
	closed = true
	err = errors.Join(err, b.lock.Close())
	b.release()
	return err
}

// release lets go of what the broker held of its storage, once Close has
// closed every partition's log and released the directory: its topics
// (their partitions and closed logs), its file system and its lock. A
// closed broker may stay referenced for long — by a closed producer or
// consumer, or by a test's t.Cleanup function (runneltest.NewBroker's,
// say), which package testing keeps until the test's parent ends, so
// that a package's parallel tests keep theirs until the last of them
// has run — and must then hold about 1.4 KB, not its records: an
// in-memory broker's file system holds every one. Close calls it
// holding mu and the admin and producer-id tokens: every other reader of
// topics holds mu or the admin token, and every reader of fs and lock
// the admin or producer-id token (and finds the broker closed once it
// has it), is Open, or is a partition's retried reopen, which closing
// its log ended for good.
func (b *Broker) release() {
	b.topics = map[string]*log.Topic{}
	b.fs, b.lock = nil, nil
}

// releaseAll runs releases (HoldLines' and the like) in order, each
// deferred: a handler's Goexit or panic in one (on a caller's goroutine)
// still runs the others, which would otherwise hold their logs' lines
// back for good.
func releaseAll(releases []func()) {
	for _, release := range slices.Backward(releases) {
		defer release()
	}
}

// handOnRoots are the functions at the root of the goroutines that hand
// lines on out of wg (Broker.handing): the maintenance's, syncLater's,
// and the partitions' logs' (goLog's). goexitGuard looks for them too.
// TestHandOnRootsNameTheirFunctions fails should one be renamed
// (and the tests of a handler's Close on their lines would hang).
var handOnRoots = []string{
	"github.com/runnel/runnel.(*Broker).maintain",
	"github.com/runnel/runnel.(*Broker).syncLater.func1",
	"github.com/runnel/runnel.(*Broker).logRound",
}

// goexitGuard is the handler of the broker's Logger, over Config.Logger's
// (unless it logs nowhere): the broker's lines and its logs' reach the
// application's handler through it. Should that handler end a goroutine
// of the broker's (handOnRoots) with runtime.Goexit, the program stops,
// saying so (errGoexit); a Goexit on any other goroutine (a caller's: a
// test's own) goes on as it came, and a panic anywhere too.
type goexitGuard struct{ next slog.Handler }

func (h goexitGuard) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h goexitGuard) Handle(ctx context.Context, r slog.Record) (err error) {
	callstack.GoexitPanics(func() { err = h.next.Handle(ctx, r) }, errGoexit, onHandOnRoot)
	return err
}

// onHandOnRoot reports whether the calling goroutine is one of the
// broker's that hand lines on (handOnRoots).
func onHandOnRoot() bool { return callstack.Within(handOnRoots...) }

func (h goexitGuard) WithAttrs(as []slog.Attr) slog.Handler {
	return goexitGuard{next: h.next.WithAttrs(as)}
}

func (h goexitGuard) WithGroup(name string) slog.Handler {
	return goexitGuard{next: h.next.WithGroup(name)}
}

// errGoexit is the panic of a goroutine of the broker's (its maintenance,
// syncLater's, a log's fsync round's) that the Logger's handler ended
// with runtime.Goexit: t.FailNow, t.Fatal or a require assertion in the
// handler of a test. Gone, the goroutine would leave its work silently
// where it stood (the maintenance for the rest of the broker's life, the
// rest of a batch of lines dropped): the program stops instead, as for a
// panic there, saying why.
var errGoexit = errors.New("runnel: a Logger's handler ended a goroutine of the broker's " +
	"(runtime.Goexit: t.FailNow, t.Fatal or a require assertion on a goroutine that is not the test's?); " +
	"it must return: report a test's failure there with t.Errorf, or hand it to the test's goroutine")

// goLog is the partitions' logs' log.Options.Go: it starts a log's
// goroutine (a group commit's fsync round run apart from its waiter,
// whose ctx may end), which hands on, as it ends, the lines logged during
// the round, counted in handing: Close waits for it last (see
// waitLines). The log calls goLog before its Close or Discard returns,
// so before Close's wait for handing, which comes once every log is
// closed.
func (b *Broker) goLog(f func()) {
	b.handing.Add(1)
	go b.logRound(f)
}

// logRound runs f, the goroutine of a log's that goLog started.
func (b *Broker) logRound(f func()) {
	defer b.handing.Done()
	f()
}

// startHanding moves a goroutine of the broker's that wg counts into
// handing, for it to hand lines on: into handing first, then out of wg,
// so that Close's wait for wg, which comes first, covers the move (see
// handing). The goroutine calls handing.Done once it is done.
func (b *Broker) startHanding() {
	b.handing.Add(1)
	b.wg.Done()
}

// waitLines is Close's last wait, once the broker is closed: for the
// broker's goroutines that hand lines on (see handing), so that no line
// of theirs reaches the handler after Close returned — unless the caller
// is one of them (a handler's Close), which would wait for itself: it
// returns at once then, the lines of the others perhaps still on their
// way. The stack tells a goroutine of a broker's, not which broker's: a
// Close on another broker's returns at once too. A handler must not wait
// for another goroutine's Close, which waits for it.
func (b *Broker) waitLines() {
	if callstack.Within(handOnRoots...) {
		return
	}
	b.handing.Wait()
}

// testHookClosedLooked, when set (by tests), runs in topic and Maintain
// once they have found the broker open, before they read its topics,
// which a Close meanwhile lets go of (see release).
var testHookClosedLooked func()

// testHookCloseMarked, when set (by tests), runs in Close once it has
// marked the broker closed, before it cancels the broker's ctx.
var testHookCloseMarked func()

// isClosed reports whether the broker is closed, or is a zero Broker,
// which is never open.
func (b *Broker) isClosed() bool { return b.closed.Load() || b.admin == nil }

// closeTopics closes every partition's log, adding to holds, if not
// nil, the releases of the HoldLines it took on each (see Close). Its
// joined error lists the partitions' errors in the topics' name order.
//
// On the operating system's file system itself (Config.FS nil or
// vfs.OS) it closes up to partitionsAtOnce partitions at once: a clean
// close is mostly fsyncs (up to eleven a partition: its active segment
// and its two indexes, its four checkpoints and their directory after
// each), and a disk takes several at once (as Kafka's LogManager closes a
// directory's logs on a pool of threads). On any other file system (a
// MemFS, a wrapper, one of the application's) it closes them one after
// another, in the topics' name order, so that a Close does the same
// file-system operations in the same order each time (the crash tests
// fail the k-th of them).
func (b *Broker) closeTopics(holds *[]func()) error {
	var parts []*log.Partition
	for _, name := range slices.Sorted(maps.Keys(b.topics)) {
		parts = append(parts, b.topics[name].Partitions...)
	}
	errs := make([]error, len(parts))
	var released []func()
	if holds != nil {
		released = make([]func(), len(parts))
		// Also should a partition's close panic: Close's releaseAll
		// hands on the lines of every partition that held them.
		defer func() {
			for _, r := range released {
				if r != nil {
					*holds = append(*holds, r)
				}
			}
		}()
	}
	eachAtOnce(len(parts), b.atOnce(), func(i int) {
		errs[i] = closePartition(parts[i], released, i)
	})
	return errors.Join(errs...)
}

// partitionsAtOnce is how many partitions the broker closes, opens or
// deletes at once on the operating system's file system (see atOnce;
// docs/details.md, "Many partitions", has what it saves).
const partitionsAtOnce = 8

// atOnce is how many partitions the broker closes (closeTopics), opens
// (openEach) or deletes (DeleteTopic) at once: partitionsAtOnce on the
// operating system's file system itself (Config.FS nil or vfs.OS), one
// at a time on any other (a MemFS, a wrapper such as vfs.WithFaults, an
// application's), whose tests fail the k-th file-system operation and
// must meet the same operations in the same order each run.
func (b *Broker) atOnce() int {
	if b.fs == vfs.OS {
		return partitionsAtOnce
	}
	return 1
}

// closePartition closes p's log, holding its lines, with released[i]
// their release, if released is not nil (see closeTopics).
func closePartition(p *log.Partition, released []func(), i int) error {
	if testHookClosePartition != nil {
		testHookClosePartition(p)
	}
	if released == nil {
		return p.Close()
	}
	k, _ := p.Lock(context.Background()) // a ctx that never ends: no error
	released[i] = k.Log().HoldLines()
	err := k.Close()
	k.Unlock()
	return err
}

// testHookClosePartition, when set (by tests), runs as closeTopics
// begins to close a partition, on the goroutine that closes it.
var testHookClosePartition func(*log.Partition)

// eachAtOnce calls f(i) for each i in [0, n), on up to limit goroutines
// at once (on the caller's, one after another, in order, if limit is 1
// or n is: see eachInOrder), and returns once every call has. Should a
// call panic, or end its goroutine (runtime.Goexit), the other calls
// still run, and then the first such end goes on on the caller's
// goroutine, as if the call had run there: its Goexit, or its panic
// raised again as a *PanicError, which keeps the value and the stack of
// the goroutine it came from (raised again with its value alone, it
// would lose where it began: in a trace, or a recover's log, the stack
// would be the caller's). Go's errgroup does not carry its goroutines'
// panics to Wait (it tried, and went back: the panic comes late, loses
// its stack, and hangs if it left a lock held that the others need);
// eachAtOnce does, for Open's, Close's and the admin calls' failures to
// leave nothing behind (the directory unlocked, the partitions opened
// closed) and a test's t.FailNow in a Logger's handler to end the
// test's goroutine. A call that panics holding a lock the calls still
// running need (an application's handler's or Clock's own) hangs them,
// and the caller with them: runnel's own calls hold no lock another
// partition's call takes.
func eachAtOnce(n, limit int, f func(i int)) {
	if limit <= 1 || n <= 1 {
		eachInOrder(n, f)
		return
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		ended    bool        // a call panicked or ended its goroutine
		panicked *PanicError // its panic; nil for a Goexit
	)
	free := make(chan struct{}, limit)
	for i := range n {
		free <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-free }()
			returned := false
			defer func() {
				if returned {
					return
				}
				var p *PanicError
				// nil for a Goexit; a panic(nil)'s is *runtime.PanicNilError.
				// The stack is still the panic's here: the deferred call
				// runs on top of the frames it began in.
				if v := recover(); v != nil {
					p = &PanicError{Value: v, Stack: debug.Stack()}
				}
				mu.Lock()
				if !ended {
					ended, panicked = true, p
				}
				mu.Unlock()
			}()
			f(i)
			returned = true
		}()
	}
	wg.Wait()
	switch {
	case !ended:
	case panicked != nil:
		panic(panicked)
	default:
		runtime.Goexit()
	}
}

// eachInOrder calls f(i) for each i in [0, n), one after another, in
// order, on the caller's goroutine. Should a call panic, or end the
// goroutine (runtime.Goexit), it makes the calls after it as that end
// goes on, from a deferred call, which runs on top of the frames it
// began in: the panic goes on as it came, unrecovered, its value for a
// recover further up and its stack in the trace. A later call's panic
// is dropped (the first goes on); a later call's Goexit ends the
// goroutine at once, the first panic with it and the calls after it not
// made.
func eachInOrder(n int, f func(i int)) {
	i := 0
	defer func() {
		if i == n {
			return
		}
		for j := i + 1; j < n; j++ {
			func() {
				// Called by a deferred call run as this func returns, not
				// by the first end's unwinding: it recovers this call's
				// panic alone, nil if it returned.
				defer func() { _ = recover() }()
				f(j)
			}()
		}
	}()
	for ; i < n; i++ {
		f(i)
	}
}

// maintain runs each partition's periodic work until Close.
func (b *Broker) maintain() {
	m := &maintainer{b: b, counted: true, quiet: b.cfg.Logger.Handler() == slog.DiscardHandler}
	defer m.end()
	t := time.NewTicker(b.cfg.MaintenanceInterval)
	defer t.Stop()
	var failing map[*log.Partition]string
	for m.resume() {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		}
		failing = b.maintainRound(failing, m)
	}
}

// maintainer is the state of the broker's maintenance goroutine, its own:
// whether wg counts it. It is counted while it maintains a partition, or
// waits to (for the next round, or for the maintenance token), not while
// it hands lines on to the Logger's handler (handOn to resume): a
// handler may call Close, which waits for wg, on any line, also on one
// this goroutine hands on. Meanwhile Broker.handing counts it, which
// Close waits for last, but for a handler's Close on this goroutine
// (waitLines); once the handler has returned the goroutine finds the
// broker closing (resume) and ends, touching no log.
type maintainer struct {
	b       *Broker
	counted bool // wg counts the goroutine
	handing bool // ... or handing does (see Broker.handing)
	quiet   bool // the Logger logs nowhere: no handler to hand lines to
}

// handOn counts the goroutine out of wg, and into handing, before it
// hands lines on, once it has given the maintenance token back (a
// handler may call Maintain, which waits for the token) and touches no
// log but to hand lines on. With a quiet Logger it stays counted:
// Close then waits for it to end. Nothing for a nil m (the caller is not
// the maintenance goroutine).
func (m *maintainer) handOn() {
	if m != nil && m.counted && !m.quiet {
		m.b.startHanding()
		m.counted, m.handing = false, true
	}
}

// resume counts the goroutine in wg again after handOn, before it
// touches a log or waits to, unless Close has begun: it reports whether
// the goroutine is to go on (false once Close has begun). bgMu orders
// the count against Close's wait, as syncLater's.
func (m *maintainer) resume() bool {
	if m.handing {
		m.b.bgMu.Lock()
		defer m.b.bgMu.Unlock()
		m.handing = false
		defer m.b.handing.Done()
		if m.b.ctx.Err() != nil {
			return false
		}
		m.b.wg.Add(1)
		m.counted = true
	}
	return m.b.ctx.Err() == nil
}

// end counts the goroutine out of wg, or of handing, as it ends.
func (m *maintainer) end() {
	if m.counted {
		m.b.wg.Done()
	}
	if m.handing {
		m.b.handing.Done()
	}
}

// maintainRound runs one round of the broker's maintenance: each
// partition's (maintainPartition), logging the failures. A failure that
// repeats one the partition had in the round before, unchanged, is logged
// at debug level only: a fenced partition (log.ErrLogFenced) fails every
// round the same way until the broker opens again, and a reopen that
// keeps failing, every round until it succeeds; each is logged as an
// error once, and again when its error changes, or when it comes back
// after a round without it. failing maps each partition that failed in the
// round before to its error's text; maintainRound returns the map for the
// next round (without the partitions gone since). m is the maintenance
// goroutine's state (nil for another caller: a test's): each partition's
// lines, and its failure's, are handed on uncounted (see maintainer).
func (b *Broker) maintainRound(failing map[*log.Partition]string, m *maintainer) map[*log.Partition]string {
	next := make(map[*log.Partition]string, len(failing))
	for _, p := range b.partitions() {
		if b.ctx.Err() != nil || m != nil && !m.resume() {
			break // Close has begun: the partitions left have no need of it
		}
		_, err := b.maintainPartition(b.ctx, p, m)
		m.handOn()
		if err == nil || errors.Is(err, log.ErrClosed) || b.ctx.Err() != nil {
			continue
		}
		msg := err.Error()
		next[p] = msg
		if prev, ok := failing[p]; ok && prev == msg {
			b.cfg.Logger.Debug("maintenance still failing", "topic", p.Topic(), "partition", p.ID(), "err", err)
			continue
		}
		b.cfg.Logger.Error("maintenance failed", "topic", p.Topic(), "partition", p.ID(), "err", err)
	}
	return next
}

// Maintain runs retention, the expiration of idle producer ids
// ([Config].ProducerIDExpiration), compaction and flush.ms on every
// partition now, as the broker's own goroutine does every
// MaintenanceInterval. It also tries again to open the log of a partition
// whose reopen after a config change failed (see
// [Broker.UpdateTopicConfig]).
//
// Every partition is maintained whatever fails on another, until ctx ends:
// the partitions not maintained by then wait for the next run (the
// broker's own, or another call).
//
// Errors:
//
//   - [ErrClosed], also for the partitions that the broker's Close closed
//     during the call;
//   - the errors.Join of the partitions' errors: a failed reopen's (wrapped
//     with the partition's name), log.ErrLogFenced for a partition whose log
//     failed or that a config change closed and could not open again,
//     log.ErrClosed for a partition whose topic was deleted meanwhile, and
//     file system errors;
//   - ctx's error when ctx ended before the call or during it (a compaction
//     under way stops at its next read).
//
// One partition is maintained at a time, whatever the calls: a Maintain
// waits for the partition another one, or the broker's own maintenance, is
// working on. (A compaction's key map takes up to CleanerMapBytes, the
// cleaner's memory for the whole broker.)
//
// The partitions are maintained in topic-name order, then by id, beginning
// with the first, or where the last call that its ctx cut short stopped,
// and wrapping around. So calls that each run out of time (maintenance run
// in short slices) take the partitions in turn, rather than each the first
// ones again, and every partition is reached within as many such calls as
// there are partitions.
//
// A call cut short stopped at the partition it was maintaining or waiting
// for, which the next call begins with; or past it, when that partition was
// done or was the first the cut call began. (A partition whose maintenance
// outlasts a call's time holds up no other.) A call that ctx does not cut
// short maintains every partition once, from that place, and leaves it
// where it was. The broker's own maintenance goes over every partition from
// the first each round, whatever the calls.
func (b *Broker) Maintain(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err // ended before the call: also with no partition to maintain
	}
	if testHookClosedLooked != nil {
		testHookClosedLooked()
	}
	ps := b.partitions()
	if len(ps) == 0 && b.closed.Load() {
		return ErrClosed // closed since the look above: Close may have let go of the topics (see release)
	}
	b.maintFromMu.Lock()
	from := b.maintFrom.start(ps)
	b.maintFromMu.Unlock()
	var (
		err  error
		stop *maintCursor // where the next call begins, once ctx has ended
	)
	for i := range ps {
		p := ps[(from+i)%len(ps)]
		if cerr := ctx.Err(); cerr != nil {
			if !errors.Is(err, cerr) {
				err = errors.Join(err, cerr)
			}
			if stop == nil { // p not begun: the next call begins with it
				stop = &maintCursor{set: true, topic: p.Topic(), id: p.ID()}
			}
			break
		}
		began, perr := b.maintainPartition(ctx, p, nil)
		err = errors.Join(err, perr)
		if ctx.Err() != nil {
			// Cut short at p: the next call begins with it, or past it
			// when p is done or was this call's first (it had the call's
			// whole time).
			stop = &maintCursor{set: true, topic: p.Topic(), id: p.ID(), after: began && (i == 0 || perr == nil)}
		}
	}
	if stop != nil {
		b.maintFromMu.Lock()
		b.maintFrom = *stop
		b.maintFromMu.Unlock()
	}
	return err
}

// maintCursor is a place in the maintenance order of the partitions
// (topic name, then id) where a Maintain call begins: at the partition
// topic-id, or just past it (after); the zero value is the first
// partition. A name, not an index: when that partition is gone, or
// others came since, the call begins with the first partition in order
// after the place.
type maintCursor struct {
	set   bool
	topic string
	id    int32
	after bool
}

// start returns the index in ps, in maintenance order (see partitions),
// of the first partition at c or past it: 0 when none is (the pass wraps
// around).
func (c maintCursor) start(ps []*log.Partition) int {
	if !c.set {
		return 0
	}
	i := slices.IndexFunc(ps, func(p *log.Partition) bool {
		d := cmp.Or(cmp.Compare(p.Topic(), c.topic), cmp.Compare(p.ID(), c.id))
		return d > 0 || d == 0 && !c.after
	})
	return max(i, 0)
}

// testHookMaintainWaits, when set (by tests), runs when a partition's
// maintenance waits for another partition's to end.
var testHookMaintainWaits func()

// testHookMaintainLog, when set (by tests), runs in maintainPartition
// between its look-up of the partition's log and that log's maintenance.
var testHookMaintainLog func()

// testHookMaintainBegins, when set (by tests), runs in maintainPartition
// once it holds the maintenance token, before it touches the partition.
var testHookMaintainBegins func(*log.Partition)

// maintainPartition is one partition's share of Maintain, run once no
// other partition's is under way (see maint): it waits until then, or
// until ctx ends (ctx's error) or Close (ErrClosed). began reports
// whether that wait ended: whether the partition's maintenance began. m
// is the state of the broker's maintenance goroutine when it is the
// caller (nil for a Maintain call): it is counted out of wg (m.handOn)
// before the lines are handed on.
func (b *Broker) maintainPartition(ctx context.Context, p *log.Partition, m *maintainer) (began bool, err error) {
	select {
	case b.maint <- struct{}{}:
	default:
		if testHookMaintainWaits != nil {
			testHookMaintainWaits()
		}
		select {
		case b.maint <- struct{}{}:
		case <-ctx.Done():
			return false, ctx.Err()
		case <-b.ctx.Done():
			return false, ErrClosed
		}
	}
	if testHookMaintainBegins != nil {
		testHookMaintainBegins(p)
	}
	// The lines of the logs maintained wait until the token is given
	// back (HoldLines): a handler may then call Maintain on them, or on a
	// line of a concurrent Produce left to this goroutine to hand on.
	var held []func()
	defer func() {
		<-b.maint
		m.handOn()
		releaseAll(held)
	}()
	// A retry's lines, the new log's and "partition reopened", wait until
	// the token is given back too (maintLogs).
	if b.cfg.Logger.Handler() != slog.DiscardHandler {
		logs := lockedlog.NewHeld()
		held = append(held, logs.Release)
		b.maintLogs.Store(logs)
		defer b.maintLogs.Store(nil) // before the token is given back
	}
	tried, err := p.RetryReopen(ctx)
	if err != nil {
		return true, fmt.Errorf("runnel: reopening %s-%d: %w", p.Topic(), p.ID(), err)
	} else if tried {
		held = append(held, func() { b.cfg.Logger.Info("partition reopened", "topic", p.Topic(), "partition", p.ID()) })
	}
	l, err := p.LogContext(ctx)
	if err != nil {
		return true, err
	}
	if testHookMaintainLog != nil {
		testHookMaintainLog()
	}
	held = append(held, l.HoldLines())
	err = l.Maintain(ctx)
	for errors.Is(err, log.ErrClosed) {
		// A config change may have reopened the partition meanwhile:
		// the new log is the one to maintain.
		next, lerr := p.LogContext(ctx)
		if lerr != nil {
			return true, lerr
		}
		if next == l {
			break
		}
		l = next
		held = append(held, l.HoldLines())
		err = l.Maintain(ctx)
	}
	if errors.Is(err, log.ErrClosed) && (b.closed.Load() || b.holds(p)) {
		err = b.partitionGone(err, p) // not deleted: ErrClosed or log.ErrLogFenced
	}
	return true, err
}

// partitions returns every partition, in topic-name order (then by id),
// so that a maintenance pass (Maintain's, or the broker's own) goes over
// them in the same order each time and does the same file-system
// operations in the same order (the fault sweeps fail the k-th of them),
// as Close does (closeTopics). A Maintain begins its pass where the last
// call cut short stopped (maintCursor), which depends on the calls only.
func (b *Broker) partitions() []*log.Partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var ps []*log.Partition
	for _, name := range slices.Sorted(maps.Keys(b.topics)) {
		ps = append(ps, b.topics[name].Partitions...)
	}
	return ps
}
