package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/isnil"
	"github.com/runnel/runnel/internal/lockedlog"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// Options are a Log's collaborators and broker-wide settings; the zero
// value means the OS file system, the system clock, no logging and Kafka's
// defaults.
type Options struct {
	// FS is the file system; nil: vfs.OS. A nil pointer (a nil
	// *vfs.MemFS) is not nil: Open refuses it, as it refuses a nil
	// pointer in Clock.
	FS    vfs.FS
	Clock Clock // the time for retention, timestamps, segment.ms; nil: SystemClock
	// Logger is where recovery, retention and compaction log; nil:
	// nowhere.
	//
	// The Log logs holding the lock its writers take, but only asks the
	// handler's Enabled under it. Its handler gets the lines once the
	// lock is released, in the order logged, on the goroutine of:
	//
	//   - the call that logged (an append that rolled, a Maintain);
	//   - or a concurrent call that hands on the lines logged meanwhile;
	//   - or, while a HoldLines is under way, the last one's release.
	//
	// Some calls hand them on later:
	//
	//   - a Partition's call, once it has released the partition's lock
	//     too;
	//   - Compact and Close, once they have released the compaction's lock;
	//   - an fsync, once its group commit's round (which Close waits for)
	//     has ended.
	//
	// So the handler may append to the Log or Partition whose line it is,
	// or close the Log.
	//
	// Open's lines are handed on as Open returns. A handler that panics,
	// or ends the goroutine, on one leaves the log it opened closed, as
	// Open does when it fails. A handler called from the Open of a
	// Partition.Reopen or RetryReopen runs holding that partition's lock,
	// and must not call the partition.
	Logger *slog.Logger
	// Go starts f on a goroutine of its own. nil: a go statement.
	//
	// The log's only goroutine is a group commit's fsync round run apart
	// from its waiter (see Durability.Wait). It hands on, as it ends, the
	// lines logged during the round.
	//
	// Close and Discard wait for the round's fsync, not for its goroutine
	// (a handler on one of its lines may close the log). An owner that
	// must know when the last line went out (a broker, whose Close returns
	// once they have) counts the goroutines with its own Go. The log calls
	// Go before Close or Discard returns, never after.
	Go func(f func())
	// ProducerExpiration is Kafka's producer.id.expiration.ms: Maintain
	// forgets an idempotent producer id that has appended nothing for
	// this long. Default (0) 1 day; negative means never (the state then
	// holds every producer id the log has seen, whatever retention
	// deleted).
	//
	// Maintain forgets the id's sequence numbers, for answering retried
	// duplicates, and on compacted topics the last batch compaction keeps
	// for it. Open does not load such an id from a producer-state
	// snapshot, as Kafka's ProducerStateManager skips it (the snapshot of
	// a roll before the expiry, after a crash, say).
	//
	// Until then, an id is kept even once retention or DeleteRecordsBefore
	// deleted all its batches, as Kafka keeps it since KIP-360.
	//
	// A producer that comes back is taken as a new one, as Kafka does
	// (KIP-360: any first sequence is accepted). So ProducerExpiration
	// should be well above the producers' delivery timeout: a retry that
	// comes later is appended again.
	//
	// The time counts from the last append, by the log's clock, which the
	// producer state's snapshot keeps across a clean Close. These count
	// from Open instead:
	//
	//   - after a crash, the producers of the batches replayed from the
	//     log. That includes one that Maintain forgot before the crash,
	//     its batches past the newest snapshot the crash kept: it is known
	//     again, its sequence numbers checked, for another
	//     ProducerExpiration;
	//   - an append that the clock has since stepped back past (an Open
	//     then reads the time as at most its own).
	//
	// Kafka counts from the last batch's max timestamp instead
	// (ProducerStateEntry.lastTimestamp), a CreateTime a producer set.
	// There, a producer whose records carry old timestamps (replayed
	// history, say) expires at the next check, between its retries, and
	// one stamped in the future never does.
	ProducerExpiration time.Duration
	// CleanerMapBytes bounds the memory of the log cleaner's key map, as
	// Kafka's log.cleaner.dedupe.buffer.size (per log here, for the one
	// pass that runs at a time).
	//
	//   - Default (0): DefaultCleanerMapBytes.
	//   - At least MinCleanerMapBytes (one key a pass), else Open returns
	//     ErrInvalidConfig.
	//   - More than MaxCleanerMapBytes (2 GiB - 1, Kafka's cap) counts as
	//     that.
	//
	// A slot takes 24 bytes (a key's 128-bit hash and its offset, as
	// Kafka's MD5 and offset), and the map is filled to 90%. So the
	// default 128 MiB maps some 5 million distinct keys a pass.
	//
	// A pass maps only the dirty section (see Compact) and takes no more
	// than that needs. A dirty section with more distinct keys is cleaned
	// in several passes.
	CleanerMapBytes int64
}

// DefaultProducerExpiration is Kafka's producer.id.expiration.ms default.
const DefaultProducerExpiration = 24 * time.Hour

// Log is one partition's log. All methods are safe for concurrent use.
//
// A Log is made by Open. A zero Log (one not made by Open) is closed:
// its methods answer ErrClosed, Close and Discard nil, and its getters
// what a closed, empty log's would (offsets 0, no segments,
// EndOffsetForEpoch (-1, -1), LargestProducerID -1).
type Log struct {
	fs     vfs.FS
	dir    string
	cfg    Config
	clock  Clock
	logger *slog.Logger

	// mu serializes writers: append, roll, truncate, retention, compaction's
	// swap, close. Readers take no lock: they load segs. A writer holds it
	// across file I/O: a caller with a ctx takes it with LockContext.
	mu   writerLock
	segs atomic.Pointer[[]*segment.Segment] // by base offset; the last is active

	// lockedLog is the logger of the code that holds mu, which is every
	// line the log logs (Open holds mu too): its lines are queued (queue,
	// under mu) and handed to logger's handler once mu is released, so
	// that a handler may append to the log, or close it, without a
	// deadlock, and a slow one holds no lock; only its Enabled is asked
	// under mu. Every release of mu goes through unlock.
	lockedLog *slog.Logger
	queue     lockedlog.Queue
	// holders counts the Partition calls under way that hold the
	// partition's lock (see enter): while there are some, unlock leaves
	// the lines queued, for them to hand on once they released it. Not
	// counted (quiet) when the logger logs nowhere.
	holders atomic.Int32
	// holds counts the HoldLines under way (each counted in holders
	// too): while there are some, a Partition call's leave leaves the
	// lines queued too, and so does a goroutine handing lines on already
	// at its next batch (queue's hold), for the last release to hand on.
	holds atomic.Int32
	quiet bool // logger's handler is slog.DiscardHandler

	next    atomic.Int64 // log end offset
	start   atomic.Int64 // log start offset
	durable atomic.Int64 // offsets below are fsynced
	// written counts the bytes appended since the log opened (stored
	// after next, under mu), and durableWritten those of them below the
	// durable offset (stored after durable, under mu): see
	// watermarkBytes. Neither comes down, at a truncation either.
	written        atomic.Int64
	durableWritten atomic.Int64
	onDurable      atomic.Pointer[func()] // see OnDurable
	onCut          atomic.Pointer[func()] // see OnCut
	recovery       int64                  // recovery point: below it, log and indexes are synced (mu)
	// rpMu serializes writes of the recovery-point checkpoint file, and
	// rpGen counts them (written under rpMu): a checkpoint written outside
	// mu (checkpointRecovery) is skipped if another was written since it
	// chose its offset. rpWritten is the offset the file holds: the one
	// Open found there (-1: none), then the one the last write put in it,
	// -1 after a write that failed (the file then holds an older offset,
	// or that one): checkpointRecovery writes again a recovery point
	// whose write failed, and not one the file holds (stored under rpMu,
	// or by Open). Order: mu, then lifeMu, then rpMu.
	rpMu      sync.Mutex
	rpGen     atomic.Int64
	rpWritten atomic.Int64
	// startWritten is the offset the log-start checkpoint holds: the one
	// Open found there (-1: none), then the one the last write put in it,
	// -1 after a write that failed. Close writes the checkpoint only if it
	// holds another (mu).
	startWritten int64
	epochs       *epochCache // mu
	producers    producers   // idempotent producers' recent batches (mu)
	// producersPeak is the most ids producers held at a Maintain since
	// it was last rebuilt (mu; see Maintain).
	producersPeak int
	// snapshots are the offsets of the producer-state snapshot files, in
	// order (mu; see snapshots.go).
	snapshots []int64
	// snapHeld is a snapshot file whose bytes the log knows: the one Open
	// loaded, then the one written last, off -1 once a write to it fails
	// (the file may hold either bytes). Close writes the snapshot as of
	// the log end unless it is listed (snapshots: a file removed is
	// unlisted) and snapHeld has its bytes (mu).
	snapHeld heldSnapshot
	// producerExpiration is Options.ProducerExpiration, defaulted.
	producerExpiration time.Duration
	// goFunc is Options.Go (nil: a go statement).
	goFunc  func(f func())
	cleaned int64 // cleaner checkpoint: first dirty offset (mu)
	// uncleanedFrom is an offset from which compaction has cleaned
	// nothing (mu): the log end offset at Open (a truncation may have
	// made a cleaned segment active again), raised by each compaction's
	// swap to the end of what it cleaned; never lowered. A truncation
	// replays the producer state only from a snapshot at or past it (see
	// reloadProducersLocked).
	uncleanedFrom   int64
	cleanerMapBytes int64 // Options.CleanerMapBytes, defaulted
	// truncations counts the truncations that removed records (written
	// under mu): a
	// compaction that began before one does not swap in what it built
	// (see Compact).
	truncations atomic.Int64
	// truncationsDone counts the truncations that have finished cutting
	// (written under mu, at the end of TruncateTo): a reader that failed
	// sees from it whether a truncation cut a segment under its read.
	truncationsDone atomic.Int64
	// compactions counts the compactions that swapped a cleaned segment
	// in (each after its segments are set): a reader's Mark takes it,
	// so that a reader that counted bytes of the log sees that a batch
	// it counted may have another size now (see Mark.Rewritten).
	compactions atomic.Int64
	// era is the current truncation era, which the next truncation ends
	// (mu; see truncationEra): a Durability holds the era of its append,
	// and with it the record of every truncation since; the log holds
	// none of the records of the truncations before.
	era *truncationEra

	// memFS: fs is the bare in-memory FS, whose fsync returns at once
	// (not one with faults, whose fsync a test may hold): syncTo runs it
	// in place whatever the ctx.
	memFS bool

	// Group commit: the fsync under way, if any (syncMu).
	syncMu sync.Mutex
	sync   *syncRound
	// lifeMu keeps a segment open while a sync runs outside mu: syncers,
	// checkpointRecovery and the reads that pin the segments (see
	// ReadInto) hold it shared, and never take mu meanwhile; deleting
	// segments and close hold it exclusively, under mu.
	lifeMu sync.RWMutex

	// SyncPeriodic bookkeeping (mu). lastFlush is when the last flush
	// was made due, or an fsync (a roll's, syncOnce's) covered the whole
	// log, for flush.ms. flushDueTo is the end of the last append that
	// made a flush due: a duplicate of a batch below it waits for the
	// flush, as that append did (see durabilityLocked).
	lastFlush  time.Time
	flushDueTo int64
	// flushClaim is the log end that the last flush made due (by an
	// append's flush.messages or flush.ms, or Maintain's flush.ms) is to
	// reach: flush.messages does not count the offsets below it, nor those
	// below the durable offset or the active segment's base (see
	// flushDueLocked). Set and lowered by a truncation under mu; given
	// back without it (releaseFlushClaim) by a wait for the flush that
	// ended before an fsync covered it.
	flushClaim atomic.Int64
	// lastSynced is when the last flush that happened began: the open,
	// a roll under a syncing policy, an fsync that covered the whole log
	// as of when it read the log end (mu). flushReleased is the claim a
	// wait gave back since (stored without mu, 0 if none): while it is
	// not durable, flush.ms counts from lastSynced again (see
	// releaseFlushClaim).
	lastSynced    time.Time
	flushReleased atomic.Int64
	// flushOwed is the log end that the last flush.ms flush of
	// Maintain's that failed (its ctx ended first, say) was to reach:
	// while the durable offset is below it (and the log end), the next
	// Maintain's flush is due (see maintain); a truncation brings it
	// down to the new end (lowerFlushOwed), and a flush that failed
	// during one owes no more than the end it left. Stored without mu.
	flushOwed atomic.Int64

	unsynced []*segment.Segment // rolled without an fsync under SyncNever (mu)
	// openedAt is when the log opened, and createdAt when each segment
	// it rolled (or compaction wrote) since was created, or a truncation
	// last emptied it, by base offset (the live segments' only: see
	// noteRolledLocked); a segment it does not list was created (for
	// segment.ms's wall clock) when the log opened: see createdLocked.
	// As Kafka's LogSegment keeps its own creation time, a segment that
	// a truncation makes active again has its own. A Partition.Reopen
	// carries both over (keepSegmentTimes). mu.
	openedAt  time.Time
	createdAt map[int64]time.Time
	// rollRemoved says a failed roll removed files whose removal no
	// directory fsync has made durable yet (mu): the active segment takes
	// no batch until one has (see unroll).
	rollRemoved bool
	// rollFailure is the error text of the failed roll last logged at
	// Warn, "" once a roll succeeds (mu): a roll that keeps failing the
	// same way, at every append that would roll, is logged at Debug (see
	// unroll).
	rollFailure string
	// removalFailure is the error text of the unsynced removal of a
	// failed roll's files last logged at Warn, "" once the removal is
	// synced (mu): see syncRollRemovalLocked.
	removalFailure string
	// futureKept is the segment last logged as kept past retention.ms
	// for a timestamp in the future, nil once none is (mu): logged once,
	// not at every retention pass (see ApplyRetention).
	futureKept *segment.Segment

	fenced atomic.Pointer[error]
	// syncFailedMarked says the sync-failed checkpoint was written (see
	// markSyncFailed).
	syncFailedMarked atomic.Bool
	// failedKey is the log's key in failedLogs (the zero key, which
	// failedLogs ignores, for a file system that has none): where it is
	// remembered when its sync-failed checkpoint cannot be written.
	failedKey failedKey
	closed    atomic.Bool
	closing   atomic.Bool   // a Close has begun: a compaction under way stops at its next read
	closeDone chan struct{} // closed when Close has returned
	info      RecoveryInfo
	// cleanMu lets one compaction run at a time; close takes it too,
	// after it sets closing and before mu, to wait for the compaction
	// under way (which stops at its next read). Order: cleanMu, then mu.
	cleanMu sync.Mutex
}

// RecoveryInfo says what Open did to bring the log back.
type RecoveryInfo struct {
	// Clean says the log was closed cleanly: nothing was scanned but the
	// segments whose index was missing or bad, rebuilt (SegmentsScanned).
	// It is false for a new log (SegmentsFound 0), which had nothing to
	// scan.
	Clean           bool
	SegmentsFound   int    // segments in the directory; 0: a new log, created by Open
	RecoveryPoint   int64  // where scanning started
	SegmentsScanned int    // segments read through to check their batches (see Clean)
	TruncatedBytes  int64  // torn tail cut
	TruncatedAt     string // file and position of the cut
	// RewrittenBytes counts the bytes Open wrote anew and synced because
	// an fsync of the log had failed before (see Open): bytes the page
	// cache held that no later fsync would have written.
	RewrittenBytes int64
	// SegmentsDeleted counts the segments removed: those after a torn
	// tail, or every one when the log ended below its log start offset
	// (see Open).
	SegmentsDeleted int
	// LogEndOffset is the log end offset Open recovered.
	LogEndOffset int64
	// ProducerSnapshot is the offset of the producer-state snapshot Open
	// rebuilt the idempotent producers' state from (the state as of that
	// offset; see the package doc), or -1 when it found none it could use
	// and replayed the log from its start.
	ProducerSnapshot int64
	// ProducerBatchesReplayed counts the batches Open read to bring that
	// state from the snapshot's offset to the log end offset.
	ProducerBatchesReplayed int
	// Duration is how long Open took.
	Duration time.Duration
}

// Open opens the log in dir, creating the directory if needed, and
// recovers it (see the package doc). cfg is copied and defaulted.
//
// On the OS file system (under any vfs.Wrapper), a relative dir is made
// absolute against the working directory at Open, as Kafka makes its log
// dirs absolute. A later change of the working directory does not move
// the log (see Dir).
//
// Errors:
//
//   - [ErrInvalidConfig];
//   - [ErrNotLogDir] for a directory with foreign files (other than an
//     OS's, see [SystemFile]);
//   - an error matching record.ErrCorrupt (see below);
//   - [ErrBadCheckpoint];
//   - file system errors.
//
// The error matching record.ErrCorrupt is a *record.CorruptError naming
// file and position. Open returns it when:
//
//   - acknowledged data is corrupt;
//   - a segment's file, or a compaction's swap file, names a base offset
//     past the largest a segment can have (math.MaxInt64 -
//     math.MaxInt32);
//   - a compaction's swap file went bad (then before Open changed
//     anything).
//
// It takes no ctx: see [OpenContext].
//
// A log whose recovered end lies below its log start offset checkpoint is
// emptied, as Kafka's log loading does. Such an end comes from
// DeleteRecordsBefore or retention moving the start into records never
// synced, under SyncNever, and a crash losing them; or from segment files
// lost. Then:
//
//   - every segment is removed, with the leader epochs and the idempotent
//     producers' state and snapshots;
//   - a new empty segment starts at the log start offset, which stays;
//   - the log end offset and the recovery point are set to it.
//
// Offsets never go backwards: a consumer at the log start stays valid,
// and no offset below it is given to another record. This is done, and
// logged as a warning, whether the log was closed cleanly or not. (A
// clean Close never writes a start past its end: such a marker is stale,
// and Recovery reports Clean false.) RecoveryInfo.SegmentsDeleted counts
// the segments removed.
//
// A log that failed before left a sync-failed checkpoint with its durable
// offset then: an fsync, or another write, fenced it (ErrLogFenced), or
// its Close failed. Linux may have marked the pages a failed fsync could
// not write clean. The files read them back, but no later fsync writes
// them, and a power loss would take them, with every record appended
// after them, acknowledged ones too.
//
// Open recovers such a log as after a crash. Then it writes its batches
// from that offset on anew (truncated and written back at the same
// offsets and positions), and syncs them before it serves them. Only then
// does it remove the checkpoint. So no record a consumer may have read
// goes, nor comes back different (RecoveryInfo.RewrittenBytes).
//
// Should an fsync of Open's own recovery fail, it writes the checkpoint at
// the recovery point and fails; the next Open writes anew from there.
//
// A log whose sync-failed checkpoint could not be written (the disk
// failing still) is remembered by the process, with the offset the
// checkpoint would have held. An Open in the same process, of the same
// directory on the same file system (under any vfs.Wrapper, such as
// vfs.WithFaults; the OS file system's directories by their absolute
// path or another path to them, by os.SameFile), then:
//
//  1. takes it as the checkpoint (the lower offset of the two, if it finds
//     the file as well);
//  2. writes the checkpoint, failing if it cannot;
//  3. writes the tail anew as above.
//
// The process forgets once that is durable. An Open in another process in
// the same boot does not know, and trusts the tail (see the package doc).
//
// Should Options.Logger's handler panic, or end the goroutine, on the line
// Open logs once the log is open ("log opened", "log created"), Open
// closes the log before the panic goes on. Nothing is left open that its
// caller cannot close.
func Open(dir string, cfg Config, opts Options) (*Log, error) {
	return OpenContext(context.Background(), dir, cfg, opts)
}

// OpenContext is Open, cut short when ctx ends, as net.Dialer.DialContext
// is net.Dial.
//
// Recovery looks at ctx:
//
//   - before each segment it opens;
//   - every 4 MiB of a segment it reads (segment.OpenContext's scan of what
//     its index does not cover, segment.Segment.RecoverContext's rescan);
//   - every 4 MiB of the batches it replays into the producer state.
//
// Cut short, it closes what it opened and leaves the directory as a crash
// at that point would, or better:
//
//   - nothing is cut from a segment before its scan has finished (a torn
//     tail is cut, and the segments after it removed, in one go);
//   - an index rebuilt only in part is removed, so that the next Open
//     rebuilds it;
//   - the recovery point, the clean-shutdown marker and the producer-state
//     snapshot, written only after that replay, are left as they were.
//
// So the next Open recovers the log fully. Past the replay, what is left
// (fsyncs and checkpoints) is done whatever ctx says.
//
// ctx bounds the opening only: the Log returned does not keep it.
//
// Errors: Open's; an error matching ctx.Err() when ctx ended.
func OpenContext(ctx context.Context, dir string, cfg Config, opts Options) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.CleanerMapBytes != 0 && opts.CleanerMapBytes < MinCleanerMapBytes {
		return nil, fmt.Errorf("%w: Options.CleanerMapBytes = %d, less than %d", ErrInvalidConfig, opts.CleanerMapBytes, MinCleanerMapBytes)
	}
	// A nil pointer in FS or Clock is a field meant and not set, as
	// runnel.Open takes it: taken as unset, FS would be the disk where a
	// memory FS was meant.
	if opts.FS != nil && isnil.Value(opts.FS) {
		return nil, fmt.Errorf("%w: Options.FS is a nil %T", ErrInvalidConfig, opts.FS)
	}
	if opts.Clock != nil && isnil.Value(opts.Clock) {
		return nil, fmt.Errorf("%w: Options.Clock is a nil %T", ErrInvalidConfig, opts.Clock)
	}
	l := &Log{fs: opts.FS, dir: dir, cfg: cfg.WithDefaults(), clock: opts.Clock, logger: opts.Logger, mu: newWriterLock(), closeDone: make(chan struct{}), era: &truncationEra{},
		producerExpiration: opts.ProducerExpiration, cleanerMapBytes: opts.CleanerMapBytes, goFunc: opts.Go}
	if l.cleanerMapBytes == 0 {
		l.cleanerMapBytes = DefaultCleanerMapBytes
	}
	if l.producerExpiration == 0 {
		l.producerExpiration = DefaultProducerExpiration
	}
	if l.fs == nil {
		l.fs = vfs.OS
	}
	if vfs.Unwrap(l.fs) == vfs.OS && !filepath.IsAbs(dir) {
		// As Kafka's log dirs (getAbsoluteFile): the directory opened
		// now, whatever the process's working directory is later.
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("runnel/log: opening %s: %w", dir, err)
		}
		l.dir = abs
	}
	_, l.memFS = l.fs.(*vfs.MemFS)
	l.failedKey, _ = failedKeyOf(l.fs, dir)
	if l.clock == nil {
		l.clock = SystemClock{}
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	l.lockedLog = l.queue.InitNoWait(&l.mu, l.logger, func() bool { return l.holds.Load() != 0 })
	l.quiet = l.logger.Handler() == slog.DiscardHandler
	// Held while the log is opened only so that Open logs as the rest
	// does (lockedLog): its lines go out, in order, as it returns.
	l.mu.Lock()
	opened := false
	defer func() {
		handed := false
		defer func() {
			if opened && !handed {
				// The handler panicked, or ended the goroutine, on a
				// line of the open: the caller gets no log to close.
				_ = l.Close()
			}
		}()
		l.unlock()
		handed = true
	}()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("runnel/log: opening %s: %w", dir, err)
	}
	begin := time.Now()
	if err := l.open(ctx); err != nil {
		if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
			return nil, fmt.Errorf("runnel/log: opening %s cut short: %w", dir, err)
		}
		return nil, err
	}
	opened = true
	l.info.Duration = time.Since(begin)
	l.info.LogEndOffset = l.next.Load()
	l.lastFlush = l.clock.Now()
	l.lastSynced, l.openedAt = l.lastFlush, l.lastFlush
	if l.info.SegmentsFound == 0 {
		l.lockedLog.Info("log created", "dir", dir, "duration", l.info.Duration)
	} else {
		l.lockedLog.Info("log opened", "dir", dir, "clean", l.info.Clean, "segments", l.info.SegmentsFound,
			"log_end_offset", l.next.Load(), "truncated_bytes", l.info.TruncatedBytes, "duration", l.info.Duration)
	}
	return l, nil
}

func (l *Log) segmentConfig() segment.Config {
	return segment.Config{IndexIntervalBytes: l.cfg.IndexIntervalBytes, MaxIndexBytes: l.cfg.SegmentIndexBytes}
}

func (l *Log) open(ctx context.Context) (err error) {
	var segs []*segment.Segment
	defer func() {
		if err != nil {
			closeAll(segs)
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				// Durably, the removal of the indexes that a recovery cut
				// short had rebuilt in part (see segment.RecoverContext):
				// a crash would bring them back, covering only part of
				// the segment (sound, but lookups past their end scan).
				err = errors.Join(err, l.fs.SyncDir(l.dir))
			}
		}
	}()
	if err := vfs.MkdirAllDurable(l.fs, l.dir, 0o755); err != nil {
		return err
	}
	names, err := l.fs.List(l.dir)
	if err != nil {
		return err
	}
	bases, clean, marker, err := l.sortFiles(names)
	if err != nil {
		return err
	}
	rp, err := readOffset(l.fs, l.dir, recoveryPointFile, 0)
	if err != nil {
		return err
	}
	rpKnown := slices.Contains(names, recoveryPointFile)
	// What the file holds (see rpWritten): after a clean Close, the
	// recovery point Open keeps, which no Maintain need write again.
	if rpKnown {
		l.rpWritten.Store(rp)
	} else {
		l.rpWritten.Store(-1)
	}
	syncFailed := slices.Contains(names, syncFailedFile)
	failedAt, err := readOffset(l.fs, l.dir, syncFailedFile, 0)
	if err != nil {
		return err
	}
	if off, ok := failedLogs.lookup(l.failedKey); ok && (!syncFailed || off < failedAt) {
		// The log failed in this process and its sync-failed checkpoint
		// could not be written (see failedLogs): as if it had been. It is
		// written now, so that an Open after this one that fails knows it
		// too, in another process as well (the process remembers until
		// the rewrite below is durable). A disk that cannot write it
		// fails the Open, as it would fail the rewrite.
		attrs := []any{"dir", l.dir, "durable_offset", off}
		if syncFailed {
			attrs = append(attrs, "checkpoint_offset", failedAt)
		}
		l.lockedLog.Warn("log failed before in this process, its sync-failed checkpoint unwritten: writing its bytes past the durable offset then anew", attrs...)
		syncFailed, failedAt = true, off
		if err := l.writeSyncFailed(off); err != nil {
			return err
		}
	}
	if syncFailed && clean {
		// A clean Close removes no such checkpoint, and a failed log
		// closes without the marker: it is stale, or of another moment.
		l.lockedLog.Warn("clean-shutdown marker beside a sync-failed checkpoint: recovering as after a crash", "dir", l.dir)
		clean = false
	}
	start, err := readOffset(l.fs, l.dir, logStartFile, 0)
	if err != nil {
		return err
	}
	l.startWritten, l.snapHeld = -1, heldSnapshot{off: -1}
	if slices.Contains(names, logStartFile) {
		l.startWritten = start
	}
	if start > maxSegmentBase {
		// No segment can start there (its indexes hold offsets relative
		// to its base in 32 bits), as a log past its end would (see the
		// emptying below), nor any log end reach it.
		return fmt.Errorf("%w: %s: log start offset %d past the largest base offset of a segment", ErrBadCheckpoint, filepath.Join(l.dir, logStartFile), start)
	}
	if l.cleaned, err = readOffset(l.fs, l.dir, cleanerFile, 0); err != nil {
		return err
	}
	if err := l.fs.Remove(filepath.Join(l.dir, oldCleanerFile)); err == nil {
		l.lockedLog.Info("cleaner checkpoint of an older runnel removed: the next compaction maps the whole log", "dir", l.dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if l.epochs, err = loadEpochs(l.fs, l.dir); err != nil {
		return err
	}
	l.snapshots = snapshotOffsets(names)
	legacy := slices.Contains(names, producerFile)
	var mk cleanMarker
	if clean {
		var why string
		if mk, why, err = readMarker(l.fs, l.dir); err != nil {
			return err
		}
		switch {
		case why != "":
			l.lockedLog.Warn("clean-shutdown marker not trusted: recovering as after a crash", "dir", l.dir, "why", why)
			clean = false
			if !rpKnown && len(bases) > 0 {
				// Beside no recovery-point file, the segments below the
				// active one are those a clean Close sealed and synced,
				// as an older runnel's marker was trusted to say: durable.
				// From 0, a batch gone bad in one would be cut as a torn
				// write, with every segment after it.
				rp = bases[len(bases)-1]
			}
		case !rpKnown:
			// The marker records the recovery point that its Close
			// wrote beside it: a directory copied without that file
			// has it still.
			rp, rpKnown = mk.end, true
		}
	}
	if clean && (mk.end != rp || len(bases) > 0 && mk.activeBase != bases[len(bases)-1]) {
		// A clean Close writes the marker after the recovery point, both
		// at its log end, and with its active segment's base offset: a
		// marker that disagrees is of another moment than the files.
		l.lockedLog.Warn("clean-shutdown marker of another log end or active segment than the files: recovering as after a crash",
			"dir", l.dir, "recorded_end", mk.end, "recovery_point", rp, "recorded_active_base", mk.activeBase)
		clean = false
	}
	if clean && len(bases) == 0 {
		// A clean Close leaves its active segment behind: a marker beside
		// no segment at all is not of these files (they were lost). The
		// log starts empty at its log start offset below, as after a
		// crash, and says so.
		l.lockedLog.Warn("clean-shutdown marker beside no segment: recovering as after a crash",
			"dir", l.dir, "recorded_end", mk.end, "recorded_active_base", mk.activeBase)
		clean = false
	}
	if clean && rpKnown && len(bases) > 0 && rp < bases[len(bases)-1] {
		// A clean Close writes its log end as the recovery point, in the
		// active segment: a marker with a recovery point below it is
		// stale (brought back by a crash, or copied with other files than
		// its own). A marker beside no recovery point at all is trusted,
		// as Kafka trusts its marker: recovered from 0, a batch gone bad
		// in a sealed segment would be cut as a torn tail, and every
		// segment after it removed. The log is opened as after a crash, as Kafka opens
		// one whose marker it cannot trust, rather than refused.
		l.lockedLog.Warn("clean-shutdown marker with a recovery point below the active segment: recovering as after a crash",
			"dir", l.dir, "recovery_point", rp, "active_base", bases[len(bases)-1])
		clean = false
	}
	l.info.Clean = clean
	l.info.RecoveryPoint = rp
	l.info.SegmentsFound = len(bases)

	var recovered []*segment.Segment
	for i, base := range bases {
		if err := ctx.Err(); err != nil {
			return err
		}
		active := i == len(bases)-1
		// What the log knows of where the segment's batches end: below
		// the next segment's base; and for the active segment of a log
		// closed cleanly, at the log end offset Close recorded. Open and
		// Recover check them, so that a batch header gone bad on disk
		// neither hides records nor makes up a log end offset.
		// Recover cuts nothing below the recovery point, and past it a
		// torn tail, holes included (see segment.Recover). Under SyncAlways
		// and SyncPeriodic, batches fsynced and acknowledged since the last
		// Maintain lie past it (checkpointRecovery): one gone bad there is
		// cut as a torn write, as Kafka cuts at the first bad batch past
		// its recovery point.
		opts := segment.OpenOptions{Active: active}
		if !active {
			opts.Limit = bases[i+1]
		} else if clean {
			opts.End = rp
		}
		s, needs, err := segment.OpenContext(ctx, l.fs, l.dir, base, l.segmentConfig(), opts)
		if err != nil {
			return err
		}
		segs = append(segs, s)
		if active && clean && !needs && (s.MaxTimestamp() != mk.maxTimestamp || s.MaxTimestampOffset() != mk.maxTimestampOffset ||
			mk.timeEntries >= 0 && int64(s.TimeIndexEntries()) != mk.timeEntries) {
			// The active segment's max timestamp and its offset, from its
			// time index's last entry and the batches after the offset
			// index's, are not those the clean Close recorded: the time
			// index is not the one that Close left (it lost its last
			// entries to a failed write before a crash, and the marker is
			// of another moment: it may have lost entries before that of
			// the max timestamp too, which its count of entries tells),
			// or the segment is not. Recovered as
			// after a crash, the segment is scanned whole and its indexes
			// rebuilt.
			l.lockedLog.Warn("clean-shutdown marker whose max timestamp or time index is not the active segment's: recovering as after a crash",
				"segment", s.String(), "recorded_max_timestamp", mk.maxTimestamp, "recorded_offset", mk.maxTimestampOffset,
				"max_timestamp", s.MaxTimestamp(), "offset", s.MaxTimestampOffset(),
				"recorded_time_entries", mk.timeEntries, "time_entries", s.TimeIndexEntries())
			clean = false
			l.info.Clean = false
			if err := s.Unseal(); err != nil {
				return err
			}
		}
		if active && clean && rpKnown && rp == 0 && s.Size() > 0 {
			// A clean Close at log end 0 leaves an empty log, and End
			// cannot say 0: a marker beside a recovery point of 0 (a
			// truncation lowered it) and records is stale. Recovered as
			// after a crash, the recovery point is written at the end.
			l.lockedLog.Warn("clean-shutdown marker with a recovery point of 0 beside records: recovering as after a crash",
				"dir", l.dir, "segment", s.String())
			clean = false
			l.info.Clean = false
		}
		// Scan the segment holding the recovery point and all after it,
		// unless the log was closed cleanly; and any whose index is bad.
		reachesRP := i+1 == len(bases) || bases[i+1] > rp
		if !needs && (clean || !reachesRP) {
			continue
		}
		res, err := s.RecoverFunc(ctx, rp, l.recoverEpoch)
		l.info.SegmentsScanned++
		if err != nil && clean && active && errors.Is(err, record.ErrCorrupt) {
			// The active segment does not end at the log end that the
			// clean Close recorded (or it does, and is corrupt): the
			// marker may be stale, the records sound. Recover it as after
			// a crash, from the recovery point, without that end: what
			// is corrupt below the recovery point still fails.
			if uerr := s.Unseal(); uerr != nil {
				return uerr
			}
			// A batch ends at rp, or the segment begins there. One that
			// merely begins there is no sign of appends after the clean
			// Close: the batch the Close ended the log with ends there,
			// and appends after it follow it, so that a batch beginning
			// at rp with none ending there had its base offset (which no
			// CRC covers) go bad.
			boundary := base == rp
			rres, rerr := s.RecoverFunc(ctx, rp, func(b record.Batch) error {
				boundary = boundary || b.NextOffset() == rp
				return l.recoverEpoch(b)
			})
			switch {
			case rerr != nil:
				err = rerr
			case boundary:
				// Appends after the clean Close (batches after the one
				// ending at its end) or nothing after it but a torn
				// tail: a stale marker, no lost records. Otherwise, the
				// error stands: records the clean Close recorded are
				// missing, or a batch header went bad and no batch ends
				// where it ended.
				l.lockedLog.Warn("clean-shutdown marker whose log end is not where the active segment ends: recovered as after a crash",
					"segment", s.String(), "recorded_end", rp, "end", s.NextOffset())
				res, err = rres, nil
				clean = false
				l.info.Clean = false
			}
		}
		if err != nil {
			return err
		}
		recovered = append(recovered, s)
		if res.Truncated == 0 {
			// A rolled segment whose batches end below the next one's base,
			// past the recovery point, lost its unsynced last batches
			// whole (a SyncNever log's, rolled since the last sync) while
			// later segments kept theirs: a torn write too, or the log
			// would count offsets it no longer holds. Compaction keeps a
			// segment's last batch; a directory with no recovery point
			// (segments copied from Kafka, whose cleaner does not) is
			// left as it is; and so is a gap below the log start offset,
			// which a deletion of segments (DeleteRecords, retention)
			// that a crash cut short (or an older runnel's that went on
			// past a failed removal) left between the segments it did
			// not remove: the later segments hold
			// records at and past the log start, durable ones too.
			// A segment that lost records below the recovery point lost
			// durable ones: the later segments hold durable records too,
			// and stay. Records below the log start do not count: if all
			// it lost from the start on lies past the recovery point, the
			// later segments go, as for any unsynced loss (DeleteRecords
			// moved the start into unsynced records, and an Open that cut
			// the segment's torn tail died before it removed the later
			// segments, a second crash taking the rest of the segment).
			if end := s.NextOffset(); active || !rpKnown || max(end, start) < rp || end >= bases[i+1] || bases[i+1] <= start {
				continue
			}
			l.lockedLog.Warn("rolled segment lost its last batches: later segments removed",
				"segment", s.String(), "next_segment_base", bases[i+1], "recovery_point", rp)
		} else {
			l.info.TruncatedBytes += res.Truncated
			l.info.TruncatedAt = fmt.Sprintf("%s at position %d", filepath.Join(l.dir, segment.FileName(base, segment.LogSuffix)), res.At)
			if res.HoleBefore > 0 {
				// Batches written after the recovery point and never synced, as a
				// power loss leaves them on a file system that commits a file's
				// size first; or, if they were synced, zeros where a disk lost them.
				l.lockedLog.Warn("cut torn tail with a hole: valid batches after a sector of zeros were cut too",
					"segment", s.String(), "bytes", res.Truncated, "position", res.At, "valid_batch_at", res.HoleBefore)
			} else {
				l.lockedLog.Warn("cut torn tail", "segment", s.String(), "bytes", res.Truncated, "position", res.At)
			}
		}
		if active {
			continue
		}
		// Later segments follow a torn write: none of it was durable (the
		// recovery point is below it), so they go and this one is active.
		for _, b := range bases[i+1:] {
			if err := segment.RemoveFiles(l.fs, l.dir, b, segment.LogSuffix, segment.IndexSuffix, segment.TimeIndexSuffix); err != nil {
				return err
			}
			l.info.SegmentsDeleted++
		}
		if err := s.Unseal(); err != nil {
			return err
		}
		break
	}
	if n := len(segs); n > 0 && segs[n-1].NextOffset() < start {
		// The log end offset is below the log start offset checkpoint:
		// DeleteRecordsBefore (or retention) moved the start into records
		// that were never synced, under SyncNever, and a crash lost them;
		// or segment files were lost. As Kafka's LogLoader does
		// (deleteSegmentsIfLogStartGreaterThanLogEnd), whether or not the
		// log was closed cleanly (a clean Close writes a start at most its
		// end: such a marker is stale), every segment goes, with the
		// leader epochs and the producer state and its snapshots, and the
		// log starts empty at the log start offset, which stays: offsets
		// never go backwards, and none below the start is handed out
		// again. The new segment, the removals and the checkpoints are
		// made durable below, as after any recovery.
		l.lockedLog.Warn("log end offset below the log start offset: every segment removed, the log starts empty at the log start offset",
			"dir", l.dir, "log_end_offset", segs[n-1].NextOffset(), "log_start_offset", start, "segments", n, "clean", clean)
		if err := l.emptyToStart(segs); err != nil {
			segs = nil
			return err
		}
		segs, recovered, legacy, marker = nil, nil, false, false
		clean = false
		l.info.Clean = false
	}
	// An empty directory starts its first segment at the log start offset.
	if len(segs) == 0 {
		s, err := segment.Create(l.fs, l.dir, max(start, 0), l.segmentConfig())
		if err != nil {
			return err
		}
		segs = append(segs, s)
		recovered = append(recovered, s)
	}
	l.segs.Store(&segs)
	active := segs[len(segs)-1]
	next := active.NextOffset()
	l.next.Store(next)
	l.start.Store(max(start, segs[0].Base()))
	l.durable.Store(next)
	l.recovery = next
	l.uncleanedFrom = next
	if l.cleaned > next {
		// A cleaner checkpoint past the log end: a truncation lowered it
		// and a crash came before it was written (or an older runnel kept
		// it in memory only). What lies below the checkpoint may have been
		// appended since, never deduplicated: all of it is dirty again, as
		// Kafka resets such a checkpoint to the log start.
		l.lockedLog.Warn("cleaner checkpoint past the log end: reset", "dir", l.dir, "checkpoint", l.cleaned, "log_end_offset", next)
		l.cleaned = 0
		if err := writeOffset(l.fs, l.dir, cleanerFile, 0); err != nil {
			return err
		}
	}
	if err := l.loadProducers(ctx, l.snapshots, legacy); err != nil {
		return err
	}
	if clean && len(recovered) == 0 {
		// Everything was synced and checkpointed by Close; only the
		// marker goes, so that a crash from now on is not taken for a
		// clean shutdown — and the single snapshot file of an older
		// runnel, replaced by one named by its offset.
		if !slices.Contains(l.snapshots, next) || l.info.ProducerSnapshot != next {
			// Close writes one as of the end: without it (a stale
			// marker put back, a snapshot lost, an older runnel's single
			// file) or with it unreadable (loadProducers skipped it),
			// the state was replayed or read from elsewhere, and
			// compaction, free below the end (uncleanedFrom), must not
			// remove a batch that no snapshot holds: a crash would then
			// forget it.
			if err := l.snapshotProducersLocked(); err != nil {
				return err
			}
		}
		if err := l.settleSnapshotsLocked(next, legacy); err != nil {
			return err
		}
		if err := l.fs.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil {
			return err
		}
		return l.fs.SyncDir(l.dir)
	}
	if syncFailed {
		// The bytes from failedAt on may be in the page cache only (see
		// syncFailedFile), scanned above from the recovery point, which
		// lies at or below failedAt: written anew, they are synced for
		// real.
		// The active segment too, whose file's failed fsync may have
		// had nothing to lose: appends go on there.
		for i, s := range segs {
			if s.NextOffset() <= failedAt && i < len(segs)-1 {
				continue
			}
			saved := false
			n, err := s.Rewrite(failedAt, func(pos int64, tail io.Reader) (io.ReadCloser, error) {
				saved = true
				return l.saveTail(s.Base(), pos, tail)
			})
			if err == nil && saved {
				err = l.removeTail(s.Base())
			}
			if err != nil {
				return err
			}
			l.info.RewrittenBytes += n
		}
		l.lockedLog.Warn("log failed before: its bytes past the durable offset then written anew and synced",
			"dir", l.dir, "durable_offset", failedAt, "bytes", l.info.RewrittenBytes)
	}
	// What recovery found and rebuilt is made durable and checkpointed,
	// so that the next crash needs to scan only what comes after: the
	// batches too, which the process that wrote them may never have
	// synced (a SyncNever log killed, its machine still up). Should a log
	// file's fsync fail, the pages it could not write may read back, never
	// to be written: the next Open writes them anew from the recovery
	// point. Any other failure here (an index's, the directory's, a file
	// the descriptor limit kept closed) needs no such rewrite.
	if logFsync, err := l.syncRecovered(recovered, active); err != nil {
		if logFsync && !syncFailed {
			err = errors.Join(err, l.writeSyncFailed(rp))
		}
		return err
	}
	if syncFailed {
		// Durable now: the process forgets (see failedLogs), and the
		// checkpoint goes (it may be missing: the process remembered
		// what it could not write).
		failedLogs.forget(l.failedKey, failedAt)
		if err := l.fs.Remove(filepath.Join(l.dir, syncFailedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := l.fs.SyncDir(l.dir); err != nil {
			return err
		}
	}
	if err := writeOffset(l.fs, l.dir, recoveryPointFile, next); err != nil {
		return err
	}
	l.rpWritten.Store(next)
	// The producer state as of the end, as Kafka snapshots after a
	// recovery: below the recovery point just written, compaction may
	// clean the segments, and must not remove a batch the newest snapshot
	// below it does not hold (the next crash would replay the log from an
	// older snapshot and forget it); and the snapshots past the end go,
	// which once appends pass their offsets again would stand for other
	// batches (see loadProducers for what they were good for until now).
	if err := l.snapshotProducersLocked(); err != nil {
		return err
	}
	if err := l.settleSnapshotsLocked(next, legacy); err != nil {
		return err
	}
	if marker {
		// The marker of a clean Close whose directory held what a failed
		// write or an unfinished cleaning left (see sortFiles) goes as
		// well, or the next crash would be taken for a clean shutdown at
		// the log end of that Close.
		if err := l.fs.Remove(filepath.Join(l.dir, cleanShutdownFile)); err != nil {
			return err
		}
		return l.fs.SyncDir(l.dir)
	}
	return nil
}

// settleSnapshotsLocked ends Open's work on the producer snapshots and
// the leader epochs, once a snapshot as of the log end next is on disk
// (the caller has written it, or found it there): the single snapshot
// file of an older runnel goes (if legacy), then the snapshots past next,
// and the epochs are trimmed to the log (trimEpochs). Open runs it after a
// clean shutdown and after a recovery alike.
func (l *Log) settleSnapshotsLocked(next int64, legacy bool) error {
	if legacy {
		if err := l.replaceLegacySnapshotLocked(); err != nil {
			return err
		}
	}
	if err := l.removeSnapshotsAboveLocked(next); err != nil {
		return err
	}
	return l.trimEpochs(next)
}

// syncRecovered syncs the segments Open recovered, their indexes, the
// active segment and the log's directory. logFsync reports whether its
// error is a log file's fsync's, which may have marked pages clean that
// it did not write (see syncFailedFile). An index's or the directory's
// failure (an fsync, or the open of a file that the process's descriptor
// limit refused) leaves the log's bytes as they were, durable or dirty,
// and the recovery point where it was: the next Open recovers them, and
// the indexes, again, with nothing to write anew.
func (l *Log) syncRecovered(recovered []*segment.Segment, active *segment.Segment) (logFsync bool, err error) {
	for _, s := range recovered {
		if err := s.Sync(); err != nil {
			return true, err
		}
		if err := s.SyncIndexes(); err != nil {
			return false, err
		}
	}
	if err := active.Sync(); err != nil {
		return true, err
	}
	return false, l.fs.SyncDir(l.dir)
}

// emptyToStart removes, at Open, the segments segs (all of the log's,
// which end below its log start offset), the leader epochs and every
// producer-state snapshot (an older runnel's single file too), as Kafka's
// log loading deletes the segments, clears its epoch cache and truncates
// its producer state fully to start at the log start. The segments are
// closed whatever fails.
//
// The epochs, the snapshots and a clean-shutdown marker (stale: a clean
// Close writes a log start at most its end) go first, durably, and the
// segments last: a crash (or a failure) part way leaves segments that end
// below the log start, and the next Open empties the log again. Removed
// first, the segments could all be gone beside the snapshots and the
// marker still there, and the next Open, finding no segment, would start
// the log at the log start with the producers of the removed records (a
// retry of a batch answered as a duplicate of one below the start, where
// the Open that did not fail forgets its producer), and take the marker
// for a clean shutdown. The segments' removal is synced before Open
// creates the new segment at the log start, so that even a file system
// that does not commit directory operations in order cannot bring back,
// beside it, an old segment's files.
//
// Before anything goes, the segments are cut to nothing and synced:
// what Open found may be in the page cache only — a truncation that
// failed before its fsync (the log fenced), and an Open in the same
// boot — and a power cut would take the end below the start back, after
// the epochs and snapshots had gone. Cut to nothing rather than only
// synced, so that a segment whose fsync failed before (and cannot be
// trusted to sync what it holds, see vfs.WithFaults) is durable too.
func (l *Log) emptyToStart(segs []*segment.Segment) error {
	var err error
	for _, s := range segs {
		if err = s.Unseal(); err == nil {
			_, err = s.TruncateTo(s.Base())
		}
		if err == nil {
			err = s.Sync()
		}
		if err != nil {
			closeAll(segs)
			return err
		}
	}
	err = l.epochs.truncateFromEnd(0)
	if err == nil {
		names := []string{cleanShutdownFile, producerFile}
		for _, off := range l.snapshots {
			names = append(names, snapshotName(off))
		}
		for _, name := range names {
			if rerr := l.fs.Remove(filepath.Join(l.dir, name)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = rerr
				break
			}
		}
		l.snapshots = nil
	}
	if err == nil {
		err = l.fs.SyncDir(l.dir)
	}
	if err != nil {
		closeAll(segs)
		return err
	}
	for _, s := range segs {
		if derr := s.Delete(); derr != nil {
			err = errors.Join(err, derr)
			continue
		}
		l.info.SegmentsDeleted++
	}
	if err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}

// recoverEpoch records, as Open's recovery reads batch b, its leader
// epoch in the epoch cache if it is newer than the latest there, as
// Kafka's LogSegment.recover does: an append writes its batches before
// it records a new epoch (appendLocked), and a crash between the two
// left the batches without their epoch. A negative epoch is none, as in
// Kafka. The batches that the recovery then cuts, or that a later
// segment's loses, lose their epochs in trimEpochs.
func (l *Log) recoverEpoch(b record.Batch) error {
	if e := b.LeaderEpoch(); e >= 0 {
		return l.epochs.assign(e, b.BaseOffset())
	}
	return nil
}

// trimEpochs drops, at Open, the leader epochs that start past the log
// end next (only a damaged checkpoint, or a crash during a truncation,
// has them) and those that end below the log start offset, the first
// kept one then starting there: a crash between the log start offset's
// checkpoint and the epochs' (DeleteRecordsBefore, retention) left those.
// As Kafka's log loading truncates its epoch cache from the end, then
// from the log start ("the earliest leader epoch may not be flushed
// during a hard failure").
func (l *Log) trimEpochs(next int64) error {
	if err := l.epochs.truncateFromEnd(next); err != nil {
		return err
	}
	return l.epochs.truncateFromStart(l.start.Load())
}

// SystemFile reports whether name is a file that an operating system's
// file manager or a network file system leaves in the directories it
// shows or serves:
//
//   - any name that starts with a dot: macOS's .DS_Store and AppleDouble
//     "._" files, NFS's ".nfs" files (of deleted files still open);
//   - Windows Explorer's Thumbs.db and desktop.ini.
//
// A log never writes such a name. Open ignores such files in a log's
// directory (as Kafka ignores the files it does not know there), where
// any other file it does not know makes it fail with [ErrNotLogDir].
func SystemFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.EqualFold(name, "Thumbs.db") || strings.EqualFold(name, "desktop.ini")
}

// fileKind is what a name in a log's directory is to the log (classify).
type fileKind int

const (
	foreignFile    fileKind = iota // not the log's: Open refuses the directory
	systemFile                     // an OS's (SystemFile): ignored
	checkpointFile                 // a checkpoint, or an older runnel's name of one
	markerFile                     // the clean-shutdown marker
	tmpFile                        // a name of the log's with .tmp added: a write cut short
	segmentFile                    // a segment's .log
	keptFile                       // a segment's index, or a producer-state snapshot
	leftoverFile                   // an unfinished cleaning's .cleaned copy, or an index .swap
	logSwapFile                    // a compaction's .log.swap, to complete
	tailCopyFile                   // a rewrite's saved tail (see tailCopySuffix), to put back
)

// classify says what name is to the log, and the base offset in a
// segment's or a swap's name.
func classify(name string) (fileKind, int64) {
	switch name {
	case recoveryPointFile, logStartFile, leaderEpochFile, cleanerFile, oldCleanerFile, producerFile, syncFailedFile:
		return checkpointFile, 0
	case cleanShutdownFile:
		return markerFile, 0
	}
	if written, ok := strings.CutSuffix(name, tmpSuffix); ok {
		// The log's own names only (a write cut short): any other name
		// with .tmp is foreign, or an OS's, as IsLogFile says.
		switch k, _ := classify(written); k {
		case foreignFile, systemFile, tmpFile:
		default:
			return tmpFile, 0
		}
	}
	if SystemFile(name) {
		return systemFile, 0
	}
	base, suffix, ok := segment.ParseFileName(name)
	if !ok {
		return foreignFile, 0
	}
	switch suffix {
	case segment.LogSuffix:
		return segmentFile, base
	case segment.IndexSuffix, segment.TimeIndexSuffix, snapshotSuffix:
		return keptFile, base
	case segment.LogSuffix + cleanedSuffix, segment.IndexSuffix + cleanedSuffix, segment.TimeIndexSuffix + cleanedSuffix,
		segment.IndexSuffix + swapSuffix, segment.TimeIndexSuffix + swapSuffix:
		return leftoverFile, base
	case segment.LogSuffix + swapSuffix:
		return logSwapFile, base
	case segment.LogSuffix + tailCopySuffix:
		return tailCopyFile, base
	}
	return foreignFile, 0
}

// IsLogFile reports whether name is one of:
//
//   - a file a log writes in its directory: a segment's .log, .index or
//     .timeindex, a producer-state .snapshot, a compaction's .cleaned or
//     .swap copy, a rewrite's .log.rewrite tail copy, a checkpoint, the
//     clean-shutdown marker;
//   - such a name with .tmp added (one being written);
//   - a file an OS leaves there ([SystemFile]), which Open ignores.
//
// A directory that holds only such files is a log's, or an empty one: the
// broker removes no other directory of a partition's name.
func IsLogFile(name string) bool {
	k, _ := classify(strings.TrimSuffix(name, tmpSuffix))
	return k != foreignFile && k != tmpFile
}

// maxSegmentBase is the largest base offset of a segment: its indexes
// hold offsets relative to it in 32 bits, up to math.MaxInt64.
const maxSegmentBase = math.MaxInt64 - math.MaxInt32

// MaxLogEndOffset is the largest log end offset: Append refuses batches
// that would take the log past it (ErrOffsetOutOfRange).
//
// It is the largest base offset a segment can have (math.MaxInt64 -
// math.MaxInt32: its indexes hold offsets relative to its base in 32
// bits). So a segment can always start at the log end, as these need:
//
//   - a roll;
//   - time retention's removal of every segment;
//   - a log start offset moved to the end (DeleteRecordsBefore).
const MaxLogEndOffset = maxSegmentBase

// sortFiles finishes or undoes interrupted compaction swaps and temporary
// files, and returns the base offsets of the segments, whether the log
// was closed cleanly, and whether the clean-shutdown marker is there: a
// log whose directory held such files is not taken for closed cleanly
// (nothing says what else the failure behind them left), though Close
// wrote the marker.
func (l *Log) sortFiles(names []string) (bases []int64, clean, marker bool, err error) {
	var swaps, swapEnds, tails []int64
	changed := false
	for _, name := range names {
		// Before anything is changed (a temporary file removed, a swap
		// completed): a segment's .log, or a compaction's swap, whose
		// base no segment can have (see maxSegmentBase) was never
		// written by runnel, and its indexes would refuse the base.
		if kind, base := classify(name); (kind == segmentFile || kind == logSwapFile) && base > maxSegmentBase {
			return nil, false, false, &record.CorruptError{Path: filepath.Join(l.dir, name),
				Reason: fmt.Sprintf("segment base offset %d past the largest a segment can have, %d", base, int64(maxSegmentBase))}
		}
	}
	for _, name := range names {
		// Before anything is changed too: a swap whose batches went bad
		// (scanEnd) would have its completion remove segments it does
		// not replace.
		if kind, base := classify(name); kind == logSwapFile {
			end, err := scanEnd(l.fs, filepath.Join(l.dir, name), base)
			if err != nil {
				return nil, false, false, err
			}
			swaps, swapEnds = append(swaps, base), append(swapEnds, end)
		}
	}
	for _, name := range names {
		kind, base := classify(name)
		switch kind {
		case checkpointFile, systemFile, keptFile:
		case markerFile:
			marker = true
		case tmpFile, leftoverFile:
			// A write cut short, an unfinished cleaning, or index swaps
			// that the rebuilt indexes replace: the old segments stand.
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, false, false, err
			}
			changed = true
		case segmentFile:
			bases = append(bases, base)
		case logSwapFile:
		case tailCopyFile:
			tails = append(tails, base)
		default:
			return nil, false, false, fmt.Errorf("%w: %s holds %q", ErrNotLogDir, l.dir, name)
		}
	}
	for i, sb := range swaps {
		var err error
		if bases, err = l.completeSwap(sb, swapEnds[i], bases); err != nil {
			return nil, false, false, err
		}
		changed = true
	}
	for _, tb := range tails {
		if !slices.Contains(bases, tb) {
			return nil, false, false, fmt.Errorf("%w: %s holds the tail copy of segment %d, which it does not hold", ErrBadTailCopy, l.dir, tb)
		}
	}
	if len(tails) > 0 {
		// A tail copy's name may not be durable yet: the Open that saved
		// it failed to fsync the directory after the rename, or its
		// process died before that fsync, and this is the same boot.
		// restoreTail cuts the segment before it writes the copy back:
		// nothing orders that truncation after the rename on disk, and a
		// power cut that kept the one and not the other would lose the
		// tail, bytes below the recovery point too. The copy's bytes were
		// synced before the rename (see saveTail).
		if err := l.fs.SyncDir(l.dir); err != nil {
			return nil, false, false, err
		}
	}
	for _, tb := range tails {
		if err := l.restoreTail(tb); err != nil {
			return nil, false, false, err
		}
		changed = true
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	orphans := false
	for _, name := range names {
		// An index without its .log: a segment's files are removed one
		// by one, the .log first, and a removal that failed part way (the
		// log fenced) or a crash between them left it. Only a segment
		// created at that base again would replace it, and offsets grow:
		// it goes now, as Kafka's LogLoader deletes an orphaned index
		// file (and it does not make a clean-shutdown marker stale: the
		// segments are as they were). After the swaps: one completed
		// above took the name of its base.
		base, suffix, ok := segment.ParseFileName(name)
		if !ok || suffix != segment.IndexSuffix && suffix != segment.TimeIndexSuffix {
			continue
		}
		if _, found := slices.BinarySearch(bases, base); found {
			continue
		}
		l.lockedLog.Warn("index file without its segment's .log: removed", "dir", l.dir, "file", name)
		if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, false, false, err
		}
		orphans = true
	}
	if changed || orphans {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return nil, false, false, err
		}
	}
	return bases, marker && !changed, marker, nil
}

func closeAll(segs []*segment.Segment) {
	for _, s := range segs {
		s.Close()
	}
}

// Close flushes and closes the log, marking it cleanly shut down so that
// the next Open scans nothing. Close is idempotent; afterwards every
// method returns ErrClosed.
//
// It writes the producer state's snapshot and the marker. It writes the
// recovery-point and log-start checkpoints unless they hold already the
// log end and start (an idle log's: its last Maintain wrote the one, Open
// found both).
//
// A fenced log is closed without the flush. The next Open recovers it,
// and writes anew what the failure may have left undurable (see Open).
// Close writes its sync-failed checkpoint if the fence could not. So does
// a Close whose flush or checkpoints fail. If it cannot either, the
// process remembers, for the next Open of the log in it (see Open).
//
// Close returns once the group commit's fsync under way, if any, has
// ended, also one whose waiters' ctx ended (see Durability.Wait). A disk
// that hangs in fsync holds it, as it would hold Close's own flush.
//
// Errors: file system errors of the flush, the checkpoints (the
// sync-failed one too) and the closing of the segments' files (the log is
// closed all the same); nil for a second call.
func (l *Log) Close() error {
	err := l.close(true)
	l.waitSyncRound()
	return err
}

// Discard closes the log without the flush and the checkpoints of Close,
// for a log whose directory is about to be removed (a deleted topic):
// appends still waiting for their fsync fail with ErrClosed. The process
// forgets the log's failure it remembered (see Open), also after Close,
// so that a new log created at the same path (a topic deleted and created
// again) is not taken for it. It is idempotent, and a no-op after Close
// otherwise. As Close, it returns once the group commit's fsync under
// way, if any, has ended.
//
// Errors: file system errors of closing the segments' files.
func (l *Log) Discard() error {
	err := l.close(false)
	l.waitSyncRound()
	// Closed, the log fences itself no more: what the process remembers
	// of its failure goes with its directory (see failedLogs).
	failedLogs.forget(l.failedKey, math.MinInt64)
	return err
}

// testHookCloseWaitsSync, when set (by tests), runs in waitSyncRound
// before it waits for a round under way.
var testHookCloseWaitsSync func(*Log)

// waitSyncRound waits, once the log is closed, for the group commit's
// fsync round under way, if any: one that syncTo runs on a goroutine of its
// own (its starter's ctx ended) may begin its syncOnce after close took
// the log's locks, find the segments closed and end; so that no round
// outlives Close (nor calls OnDurable's f after it), but for its
// goroutine's hand-on of the round's lines, which a handler closing the
// log may run in (see Options.Go). It is called without the log's locks,
// which the round takes. No round begins after it: syncTo starts one
// under syncMu only while the log is not closed.
func (l *Log) waitSyncRound() {
	l.syncMu.Lock()
	r := l.sync
	l.syncMu.Unlock()
	if r == nil {
		return
	}
	if testHookCloseWaitsSync != nil {
		testHookCloseWaitsSync(l)
	}
	<-r.done
}

func (l *Log) close(clean bool) error {
	if l.zero() {
		return nil // never open
	}
	// A compaction under way holds cleanMu: it stops at its next read
	// instead of finishing its pass, which may take long, while the
	// partition's appends and reads wait for a Reopen's Close.
	l.closing.Store(true)
	l.cleanMu.Lock()
	l.enterOwn()
	defer l.exitOwn(&l.cleanMu)
	l.mu.Lock()
	defer l.unlock()
	if l.closed.Swap(true) {
		return nil
	}
	defer close(l.closeDone)
	l.lifeMu.Lock()
	defer l.lifeMu.Unlock()
	segs := *l.segs.Load()
	var err error
	if clean && l.fenceErr() == nil {
		if err = l.shutdownLocked(segs); err == nil {
			// Everything is fsynced: appends still waiting for their
			// fsync (Durability.Wait) are durable, not failed.
			l.durable.Store(l.next.Load())
			l.durableWritten.Store(l.written.Load())
		} else {
			// An fsync of the flush may have failed: the next Open must
			// not take what it did not write for durable.
			err = errors.Join(err, l.markSyncFailed())
		}
	} else if clean {
		// Fenced: if the checkpoint could not be written then, again.
		err = l.markSyncFailed()
	}
	for _, s := range segs {
		if clean {
			err = errors.Join(err, s.Close())
		} else {
			// Discard: the files are about to go, and need nothing
			// written (on a full disk, nothing could be).
			err = errors.Join(err, s.Discard())
		}
	}
	return err
}

func (l *Log) shutdownLocked(segs []*segment.Segment) error {
	for _, s := range append(l.takeUnsyncedLocked(), segs[len(segs)-1]) {
		if err := s.Sync(); err != nil {
			return err
		}
	}
	for _, s := range segs {
		if err := s.Close(); err != nil { // trims and syncs the indexes
			return err
		}
	}
	next := l.next.Load()
	// A checkpoint or snapshot that holds already what Close would write
	// (an idle partition's: its last Maintain wrote its recovery point,
	// Open found them) is left as it is, two fsyncs and a rename each
	// saved: its content was synced before its rename, and the marker's
	// fsync of the directory below makes the rename durable, should a
	// process that ended before that fsync have left it in the page cache
	// alone.
	if err := l.writeSnapshotLocked(false); err != nil {
		return err
	}
	if err := l.writeRecoveryUnlessHeldLocked(next); err != nil {
		return err
	}
	if err := l.writeStartLocked(l.start.Load()); err != nil {
		return err
	}
	active := segs[len(segs)-1]
	return writeFileAtomic(l.fs, l.dir, cleanShutdownFile,
		appendMarker(nil, cleanMarker{end: next, activeBase: active.Base(), maxTimestamp: active.MaxTimestamp(),
			maxTimestampOffset: active.MaxTimestampOffset(), timeEntries: int64(active.TimeIndexEntries())}))
}

// Dir is the log's directory: the dir Open was given, made absolute on
// the OS file system (see Open).
func (l *Log) Dir() string { return l.dir }

// Config returns the log's configuration, defaults filled in.
func (l *Log) Config() Config { return l.cfg }

// LogEndOffset is the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 { return l.next.Load() }

// LogStartOffset is the first offset a reader may read.
func (l *Log) LogStartOffset() int64 { return l.start.Load() }

// DurableOffset is the offset below which every record is fsynced. It is
// never past LogEndOffset at any one moment; a caller that needs both, or
// the log start offset with them, reads them together with Offsets.
func (l *Log) DurableOffset() int64 { return l.durable.Load() }

// Offsets are a log's offsets as of one moment: Start <= End and
// Durable <= End.
type Offsets struct {
	Start   int64 // LogStartOffset
	Durable int64 // DurableOffset
	End     int64 // LogEndOffset
}

// Offsets returns the log start offset, the durable offset and the log
// end offset as of one moment.
//
// Read one after another, the three may belong to different moments:
//
//   - appends and fsyncs between the reads raise the end and the durable
//     offset (a durable offset read after the end may be past it);
//   - a truncation between them lowers all three (an end read after the
//     others may be below them).
//
// Offsets takes no lock unless a truncation is under way, which it then
// waits for.
func (l *Log) Offsets() Offsets {
	// Only a truncation lowers the end. While none runs, the end read last
	// is at least the others read before it; every store of the three is
	// made under mu, so a truncation under way or begun meanwhile is waited
	// for there.
	n := l.truncations.Load()
	if l.truncationsDone.Load() == n {
		o := Offsets{Start: l.start.Load(), Durable: l.durable.Load(), End: l.next.Load()}
		if l.truncations.Load() == n {
			return o
		}
	}
	l.mu.Lock()
	defer l.unlock()
	return Offsets{Start: l.start.Load(), Durable: l.durable.Load(), End: l.next.Load()}
}

// OnDurable registers f to be called each time an fsync has advanced
// DurableOffset, from the goroutine that ran the fsync.
//
// It is called also when the Append that waited for the fsync had already
// returned (its ctx ended). So readers waiting for the durable offset to
// move are woken by the move itself.
//
// f must not block, nor close the log (Close waits for the fsync that
// calls f). A later call replaces f; nil removes it.
func (l *Log) OnDurable(f func()) {
	if f == nil {
		l.onDurable.Store(nil)
		return
	}
	l.onDurable.Store(&f)
}

// OnCut registers f to be called each time records were cut from the
// log: its start offset moved up (DeleteRecordsBefore, ApplyRetention and
// so Maintain) or its end offset came down (TruncateTo), also when the
// call then failed; or a compaction's swap failed once it had closed the
// segments it replaces, whose offsets answer ErrLogFenced since (see
// Read). It is called after the log's lock is released, from
// the goroutine of the call that cut. A reader waiting for more records
// from an offset the cut left out of range learns it so, at once (see
// Partition.Changed). f must not block. A later call replaces f; nil
// removes it.
func (l *Log) OnCut(f func()) {
	if f == nil {
		l.onCut.Store(nil)
		return
	}
	l.onCut.Store(&f)
}

// unlock releases mu, then hands the lines logged under it (lockedLog)
// to the logger's handler, in the order logged (see
// lockedlog.Queue.Unlock).
//
// While a Partition call holds the partition's lock around the log's
// (holders), the lines stay queued, for it to hand on once it released
// it (leave): a handler that appends to the partition would otherwise
// wait for that lock behind a Reopen waiting for it, which waits for the
// call.
//
// A leave, exitOwn or HoldLines release that finds lines queued hands
// them on only if it can take mu at once: one that waited for it would
// wait for whatever holds it, an append stuck in its write to a disk
// that hangs, say, though the call's own work is done. It leaves them to
// the holder instead, whose unlock looks at holders again once it has
// released mu: a call that counted itself out after the first look, and
// found mu held, is seen by the second.
func (l *Log) unlock() {
	for l.holders.Load() != 0 {
		l.queue.UnlockKeep()
		if l.holders.Load() != 0 || !l.queue.Pending() || !l.mu.TryLock() {
			return // left to the calls counted, or to whoever holds mu
		}
	}
	l.queue.Unlock()
}

// handOn hands on the lines queued, if there are some and mu can be
// taken at once; else they are left to the holder of mu (see unlock).
// The caller holds none of the log's locks (nor its partition's).
func (l *Log) handOn() {
	if l.queue.Pending() && l.mu.TryLock() {
		l.queue.Unlock()
	}
}

// enter counts a Partition call that holds the partition's lock (shared
// or not) and calls the log: the lines logged meanwhile wait for it to
// release that lock and call leave. Nothing for a quiet log.
func (l *Log) enter() {
	if !l.quiet {
		l.holders.Add(1)
	}
}

// HoldLines keeps the lines the log logs from now on queued until the
// returned release is called (once), which hands them on (see
// Options.Logger).
//
// It is for a caller that calls the log, or the Partition whose log it
// is, while it holds a lock of its own that the Logger's handler may wait
// for (a broker's maintenance or admin token, say). The caller calls
// release once it has let go of that lock. Its goroutine then never hands
// lines on while it holds it: neither its own lines nor those of
// concurrent calls, which would otherwise be left to it while it hands on
// its own.
//
// Meanwhile the lines of every call, the Partition's too, wait for the
// release (of the last HoldLines under way, if there are several). With a
// logger that logs nowhere it costs nothing.
//
// A handler that ends the goroutine of release with runtime.Goexit
// (t.FailNow in a test) ends it as it would anywhere else: release is
// not a sync.OnceFunc, which would turn the Goexit into a panic(nil).
func (l *Log) HoldLines() (release func()) {
	if l.quiet {
		return func() {}
	}
	l.holds.Add(1)
	l.holders.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			l.holders.Add(-1)
			// Whatever calls are under way: the caller holds no lock of
			// the log's or its partition's, and one under way may never
			// end (see leave). But not while another HoldLines is under
			// way: the last release hands them on (a release that counts
			// itself out after this one read holds reads Pending after
			// it did).
			if l.holds.Add(-1) == 0 {
				l.handOn()
			}
		})
	}
}

// enterOwn counts a call of the log's own that holds a lock of the
// log's a handler may wait for: cleanMu (Compact, close; a handler that
// closes the log takes it) or a group commit's round (runSync; Close
// waits for the round). The lines logged meanwhile stay queued until
// exitOwn. Nothing for a quiet log.
func (l *Log) enterOwn() { l.enter() }

// exitOwn ends enterOwn: it releases mu (cleanMu; nil for a round), then
// hands on the lines queued, unless other calls are counted still. Unlike
// leave it holds back for those: the call may run inside a Partition
// call (a Partition's Close, an Append's fsync), whose partition lock is
// held until that call's leave, which hands them on; a line queued
// meanwhile is seen by the last of them to count itself out (see
// leave). Nor does it wait for mu (see unlock).
func (l *Log) exitOwn(mu *sync.Mutex) {
	if mu != nil {
		mu.Unlock()
	}
	if l.quiet {
		return
	}
	l.holders.Add(-1)
	if l.queue.Pending() && l.mu.TryLock() { // else left to mu's holder (see unlock)
		l.unlock()
	}
}

// leave ends enter, once the partition's lock is released: it hands on
// the lines queued, whether other calls still hold that lock or not (it
// holds none itself; under steady appends some always may), unless a
// HoldLines is under way, whose release hands them on. A line queued
// while holders were counted is so handed on by a leave that comes
// after: the line's Pending is set before unlock reads holders, and
// leave reads Pending after it counted itself out; and a line a leave
// leaves to a HoldLines by its release, which reads Pending after it
// counted itself out of holds. It does not wait for mu: held, mu's
// holder hands them on (see unlock).
func (l *Log) leave() {
	if l.quiet {
		return
	}
	l.holders.Add(-1)
	if l.holds.Load() == 0 {
		l.handOn()
	}
}

// unlockCut releases mu, held by a call that may cut records (see OnCut)
// since the log started at start and ended at end, and then calls
// OnCut's f if the call did cut.
func (l *Log) unlockCut(start, end int64) {
	cut := l.start.Load() > start || l.next.Load() < end
	l.unlock()
	if f := l.onCut.Load(); cut && f != nil {
		(*f)()
	}
}

// Recovery tells what Open found and did.
func (l *Log) Recovery() RecoveryInfo { return l.info }

// Size is the total size of the log's segments in bytes.
func (l *Log) Size() int64 {
	if l.zero() {
		return 0
	}
	var n int64
	for _, s := range *l.segs.Load() {
		n += s.Size()
	}
	return n
}

// Segments returns the number of segments.
func (l *Log) Segments() int {
	if l.zero() {
		return 0
	}
	return len(*l.segs.Load())
}

// LeaderEpochs returns the leader epoch cache entries.
func (l *Log) LeaderEpochs() []EpochEntry {
	if l.zero() {
		return nil
	}
	l.mu.Lock()
	defer l.unlock()
	return append([]EpochEntry(nil), l.epochs.entries...)
}

// LargestProducerID returns the largest id among the idempotent
// producers whose state the log keeps (those whose batches it would
// answer as duplicates), or -1 if it keeps none. A broker that hands out
// producer ids hands out none at or below it (runnel.Broker's Open), so
// that a new producer is never taken for one the log knows, even if the
// broker's own counter was lost or rolled back.
func (l *Log) LargestProducerID() int64 {
	if l.zero() {
		return -1
	}
	l.mu.Lock()
	defer l.unlock()
	largest := int64(-1)
	for id := range l.producers {
		largest = max(largest, id)
	}
	return largest
}

// EndOffsetForEpoch answers KIP-101's OffsetForLeaderEpoch as Kafka's
// LeaderEpochFileCache.endOffsetFor does. It returns the largest epoch at
// most epoch that the log has, and the first offset after it (the log end
// offset for the latest epoch).
//
//   - An epoch below the earliest the log has (retention or DeleteRecords
//     removed its records) gets itself and the earliest one's start
//     offset, the log start.
//   - An epoch above the latest (one a TruncateTo dropped, say), -1
//     (UNDEFINED_EPOCH) and a log without epochs get (-1, -1).
//
// Whether an epoch is past the partition leader's own is the caller's to
// check (Kafka's FENCED_LEADER_EPOCH).
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	if l.zero() {
		return -1, -1
	}
	l.mu.Lock()
	defer l.unlock()
	return l.epochs.endOffsetFor(epoch, l.next.Load())
}

// zero reports whether l is a zero Log, one not made by Open, which is
// closed: its writer lock, among others, was never made.
func (l *Log) zero() bool { return l.closeDone == nil }

// isClosed reports whether l is closed, or a zero Log.
func (l *Log) isClosed() bool { return l.closed.Load() || l.zero() }

func (l *Log) check() error {
	if l.isClosed() {
		return ErrClosed
	}
	return l.fenceErr()
}

func (l *Log) fenceErr() error {
	if p := l.fenced.Load(); p != nil {
		return *p
	}
	return nil
}

// fence makes the log refuse every later write: cause is wrapped with
// ErrLogFenced. The caller holds mu (the lines are logged under it).
func (l *Log) fence(cause error) error {
	logLines, err := l.fenceUnlogged(cause)
	logLines()
	return err
}

// fenceUnlogged is fence without its lines: it returns a func that logs
// them, for a caller that fences without mu (syncOnce, holding lifeMu,
// which comes after mu) to call once it holds mu.
func (l *Log) fenceUnlogged(cause error) (logLines func(), _ error) {
	err := fmt.Errorf("%w: %w", ErrLogFenced, cause)
	if !l.fenced.CompareAndSwap(nil, &err) {
		return func() {}, *l.fenced.Load()
	}
	// The log stays fenced should this fail; Close tries again.
	merr := l.markSyncFailed()
	return func() {
		l.lockedLog.Error("log fenced", "dir", l.dir, "err", cause, "then", fencedThen)
		if merr != nil {
			l.lockedLog.Error("sync-failed checkpoint not written", "dir", l.dir, "err", merr)
		}
	}, err
}

// fencedThen is what the "log fenced" line tells its reader to do: a
// fenced log refuses writes until it is opened again, which writes anew
// what the failure may have left undurable (see Open); the broker does
// not reopen a log fenced so on its own.
const fencedThen = "writes are refused until the log is opened again: fix the cause (a full disk, a failing device), then Close and Open it (with runnel: the Broker)"

// markSyncFailed writes the sync-failed checkpoint at the durable offset
// (see syncFailedFile), once: so that the next Open of the log writes
// anew, and truly syncs, what a failed fsync may have left in the page
// cache only.
func (l *Log) markSyncFailed() error {
	if l.syncFailedMarked.Load() {
		return nil
	}
	if err := l.writeSyncFailed(l.durable.Load()); err != nil {
		return err
	}
	l.syncFailedMarked.Store(true)
	return nil
}

// writeSyncFailed writes the sync-failed checkpoint at off. One renamed
// into place whose directory's fsync failed counts as written: the next
// Open without a crash finds it, and a crash takes the page cache with
// it. If it is not written (the disk failing still), the process
// remembers off (see failedLogs), so that an Open in it writes anew what
// the checkpoint would have made it write.
func (l *Log) writeSyncFailed(off int64) error {
	err := writeOffset(l.fs, l.dir, syncFailedFile, off)
	if err == nil || errors.As(err, new(*inPlaceError)) {
		return nil
	}
	failedLogs.record(l.failedKey, off)
	return err
}

var _ io.Closer = (*Log)(nil)
