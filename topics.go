package runnel

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/lockedlog"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/segment"
)

const (
	topicsDir   = "topics"
	lockFile    = "runnel.lock"
	producerIDs = "producer-ids"
	metaTmp     = "runnel.tmp"
	// deletedSuffix ends a topic's deletion marker, <Dir>/topics/<name>.del:
	// DeleteTopic renames the topic's record so before it removes the
	// topic's partitions, and removes it once they are gone (see
	// DeleteTopic, removeStrays). An older runnel's Open skips it, as
	// any name that does not end in .json. (Short: the longest topic
	// name, 249 bytes, with .json.deleted would pass the 255 bytes a file
	// name may have.)
	deletedSuffix = ".del"
)

// topicMeta is what <Dir>/topics/<name>.json holds: the topic as created
// or altered, without the broker's defaults filled in.
type topicMeta struct {
	// Version is metaVersion when written; records without one are of
	// version 0, whose enums had no "default" value (see parseMeta).
	Version int    `json:"version,omitempty"`
	Name    string `json:"name"`
	// ID is the topic's ID (written since topic IDs came; a record
	// without one gets one when the broker opens: see load).
	ID     log.TopicID     `json:"id,omitzero"`
	Config log.TopicConfig `json:"config"`
}

// metaVersion is the version of the topic records this broker writes.
const metaVersion = 1

// ValidateTopicName applies Kafka's rules: 1 to 249 characters of
// [a-zA-Z0-9._-], and neither "." nor "..". The error matches
// ErrInvalidTopic. It is api.ValidateTopicName, which the clients use too.
func ValidateTopicName(name string) error { return api.ValidateTopicName(name) }

// checkPortableName refuses a new topic whose files would have a device
// name on Windows: CON, PRN, AUX, NUL, COM1 to COM9 or LPT1 to LPT9, in
// any case, alone or followed by an extension (the name up to its first
// '.' counts, as Windows' Naming a File page and Go's path/filepath read
// it: NUL.txt is NUL). A topic's record, <topic>.json, has one when the
// topic's name up to its first '.' is one (CON, con.orders), and so do
// its partition directories, <topic>-<N>, when it has a '.' (con.orders-0;
// CON-0 is not one). Windows refuses them or opens the device instead.
// Every OS refuses them, so that a data directory moves from one OS to
// another without a surprise. Kafka accepts them. COM0 and LPT0, which
// Windows lets a file be named, are allowed.
//
// Errors: ErrInvalidTopic.
func checkPortableName(name string) error {
	base, _, _ := strings.Cut(name, ".")
	reserved := false
	switch strings.ToUpper(base) {
	case "CON", "PRN", "AUX", "NUL":
		reserved = true
	default:
		if len(base) == 4 && '1' <= base[3] && base[3] <= '9' {
			switch strings.ToUpper(base[:3]) {
			case "COM", "LPT":
				reserved = true
			}
		}
	}
	if reserved {
		return fmt.Errorf("%w: %q: %s is a device name on Windows, which its files (%s.json) would take", ErrInvalidTopic, name, base, name)
	}
	return nil
}

// withDefaults fills the zero fields of c from the broker's defaults.
func (b *Broker) withDefaults(c log.Config) log.Config { return withDefaults(c, b.cfg.TopicDefaults) }

// logConfig is the config a topic's logs are opened with: c's zero fields
// filled from the broker's defaults, and no more. log.Open fills those
// still zero with Kafka's defaults itself (log.Config.WithDefaults); a
// config that went through WithDefaults already would reach it with the
// negative values that stand for 0 (DeleteRetentionTime,
// MinCleanableDirtyRatio) made 0, which Open takes for "the default".
func (b *Broker) logConfig(c log.Config) log.Config { return overDefaults(c, b.cfg.TopicDefaults) }

// withDefaults fills the zero fields of c from defaults, and those left
// zero from Kafka's.
func withDefaults(c, defaults log.Config) log.Config {
	return overDefaults(c, defaults).WithDefaults()
}

// runsAs is withDefaults(c) with each "unlimited" or "never" made one
// value, and FlushMessages and FlushInterval, which only SyncPeriodic
// reads, cleared under the other policies, so that two configs the logs
// run alike with are equal: Kafka's retention.bytes=-1 and the default's
// 0, a RetentionTime or SegmentTime of -1 and one of -2, a
// MaxCompactionLag of -1 and the default's 0, a TimestampBeforeMax of -1
// and the default's 0, a TimestampAfterMax of -1 and one of -2.
func (b *Broker) runsAs(c log.Config) log.Config {
	c = b.withDefaults(c)
	if c.Sync != log.SyncPeriodic {
		c.FlushMessages, c.FlushInterval = 0, 0
	}
	if c.RetentionBytes < 0 {
		c.RetentionBytes = 0
	}
	if c.RetentionTime < 0 {
		c.RetentionTime = -1
	}
	if c.SegmentTime < 0 {
		c.SegmentTime = -1
	}
	if c.MaxCompactionLag < 0 {
		c.MaxCompactionLag = 0
	}
	if c.TimestampBeforeMax < 0 {
		c.TimestampBeforeMax = 0
	}
	if c.TimestampAfterMax < 0 {
		c.TimestampAfterMax = -1
	}
	return c
}

// overDefaults fills the zero fields of c from defaults.
func overDefaults(c, defaults log.Config) log.Config {
	out := reflect.ValueOf(&c).Elem()
	def := reflect.ValueOf(defaults)
	for i := range out.NumField() {
		if out.Field(i).IsZero() {
			out.Field(i).Set(def.Field(i))
		}
	}
	return c
}

// validate checks a topic's config as set, its zero fields taking the
// broker's defaults (see validateWith).
//
// Errors: log.ErrInvalidConfig.
func (b *Broker) validate(c log.Config) error { return validateWith(c, b.cfg.TopicDefaults) }

// validateWith checks a topic's config as set, its zero fields taking
// defaults, and that the topic's record can hold it: JSON has no
// infinities, and a MinCleanableDirtyRatio of -Inf (a negative ratio,
// which stands for 0) would pass the log's checks and fail the record's
// write.
//
// Errors: log.ErrInvalidConfig.
func validateWith(c, defaults log.Config) error {
	if math.IsInf(c.MinCleanableDirtyRatio, 0) {
		return fmt.Errorf("%w: MinCleanableDirtyRatio = %v (min.cleanable.dirty.ratio: from 0 to 1, a negative value for 0; an infinity cannot be recorded)", log.ErrInvalidConfig, c.MinCleanableDirtyRatio)
	}
	return withDefaults(c, defaults).Validate()
}

// blameDefaults returns the fields of the broker's TopicDefaults that
// make c invalid, c being valid without them (with Kafka's defaults): the
// fields c takes from them (zero in c, set in the defaults) without any
// one of which c validates, or, if no one field does it, every field c
// takes from them. It returns nil when c is invalid on its own.
func (b *Broker) blameDefaults(c log.Config) []string {
	if validateWith(c, log.Config{}) != nil {
		return nil
	}
	set := reflect.ValueOf(c)
	def := reflect.ValueOf(b.cfg.TopicDefaults)
	var taken, blamed []string
	for i := range set.NumField() {
		if !set.Field(i).IsZero() || def.Field(i).IsZero() {
			continue
		}
		name := set.Type().Field(i).Name
		taken = append(taken, name)
		without := b.cfg.TopicDefaults
		reflect.ValueOf(&without).Elem().Field(i).SetZero()
		if validateWith(c, without) == nil {
			blamed = append(blamed, name)
		}
	}
	if len(blamed) == 0 {
		return taken
	}
	return blamed
}

func (b *Broker) partitionDir(topic string, id int) string {
	return filepath.Join(b.root, topic+"-"+strconv.Itoa(id))
}

func (b *Broker) openPartition(ctx context.Context, topic string, id int, cfg log.Config, opts log.Options) (*log.Partition, error) {
	opts.Logger = partitionLogger(opts.Logger, topic, id)
	l, err := log.OpenContext(ctx, b.partitionDir(topic, id), b.logConfig(cfg), opts)
	if err != nil {
		return nil, err
	}
	return log.NewPartition(topic, int32(id), l), nil
}

// partitionOpen is a partition that openEach opens: topic t's partition
// id, with what its open did.
type partitionOpen struct {
	t  *log.Topic
	id int
	// tried is set by the open once it comes to the step that may make
	// the partition's directory (or some of its files): a failed call
	// removes it again.
	tried bool
	p     *log.Partition // once opened
	err   error
}

// openEach opens the partitions todo yields, each with open (which sets
// the partitionOpen's p, tried and err), until one fails, and then
// starts none after it in todo's order: it returns the error of the
// first, in todo's order, that failed (open's error, ctx's when its ctx
// ended), or nil. Those before it still start (at most
// partitionsAtOnce-1 of them can have been waiting to), so that the
// error is the one that opening them one after another returns, however
// the goroutines are scheduled. It calls
// done for each partition whose open it started, in todo's order, once
// it and the ones started with it are over (also should one panic, or
// end its goroutine, which then goes on on the caller's goroutine, as
// eachAtOnce does): the caller keeps what was opened, to serve it or to
// discard it.
//
// On the operating system's file system itself it opens up to
// partitionsAtOnce partitions at once, as closeTopics closes them: creating
// a partition is mostly fsyncs (ten: its files, its checkpoints and their
// directory after each), recovering one after a crash about as many, and a
// disk takes several at once (as Kafka's LogManager loads a directory's
// logs on num.recovery.threads.per.data.dir threads). On any other file
// system it opens them one after another, in todo's order, so that the
// crash tests meet the same file-system operations in the same order
// each run. It takes todo's partitions openChunk at a time, so that its
// memory grows with the partitions opened, not with a count asked for
// (up to math.MaxInt32 of them, which fail long before for want of
// descriptors).
func (b *Broker) openEach(todo iter.Seq2[*log.Topic, int], open func(*partitionOpen), done func(*partitionOpen)) error {
	limit := b.atOnce()
	var (
		chunk []partitionOpen
		first error
	)
	run := func() {
		// done for each call that began (each one that ends sets
		// tried, p and err before eachAtOnce returns or goes on with
		// its panic or Goexit).
		began := make([]bool, len(chunk))
		defer func() {
			for i := range chunk {
				if began[i] {
					done(&chunk[i])
				}
			}
		}()
		// failedAt is the lowest index of chunk whose open failed so
		// far (len(chunk) while none has): a call after it in chunk
		// starts no open, one before it does, as it would have one
		// after another (a goroutine may come to look after a later
		// one has failed).
		var mu sync.Mutex
		failedAt := len(chunk)
		eachAtOnce(len(chunk), limit, func(i int) {
			if testHookOpenStarting != nil {
				testHookOpenStarting(chunk[i].t.Name, chunk[i].id)
			}
			mu.Lock()
			after := failedAt < i
			mu.Unlock()
			if after {
				return
			}
			began[i] = true
			ended := false
			defer func() {
				if !ended || chunk[i].err != nil { // a panic or a Goexit too
					mu.Lock()
					failedAt = min(failedAt, i)
					mu.Unlock()
				}
			}()
			if testHookOpenPartition != nil {
				testHookOpenPartition(chunk[i].t.Name, chunk[i].id)
			}
			open(&chunk[i])
			ended = true
		})
		for _, o := range chunk {
			if o.err != nil {
				first = o.err
				return
			}
		}
	}
	for t, id := range todo {
		chunk = append(chunk, partitionOpen{t: t, id: id})
		if len(chunk) == openChunk {
			run()
			if first != nil {
				return first
			}
			chunk = chunk[:0]
		}
	}
	if len(chunk) > 0 {
		run()
	}
	return first
}

// openChunk is how many partitions openEach takes on at a time.
const openChunk = 1024

// testHookOpenPartition, when set (by tests), runs as openEach begins to
// open topic's partition id, on the goroutine that opens it.
var testHookOpenPartition func(topic string, id int)

// testHookOpenStarting, when set (by tests), runs as openEach's call for
// topic's partition id starts, on its goroutine, before it looks whether
// an earlier partition failed (and testHookOpenPartition runs).
var testHookOpenStarting func(topic string, id int)

// partitionsOf yields the partitions [from, to) of t.
func partitionsOf(t *log.Topic, from, to int) iter.Seq2[*log.Topic, int] {
	return func(yield func(*log.Topic, int) bool) {
		for id := from; id < to; id++ {
			if !yield(t, id) {
				return
			}
		}
	}
}

// partitionsOfTopics yields the partitions of each of topics (as many
// as its record says), in order.
func partitionsOfTopics(topics []*log.Topic) iter.Seq2[*log.Topic, int] {
	return func(yield func(*log.Topic, int) bool) {
		for _, t := range topics {
			for id := range t.Config.Partitions {
				if !yield(t, id) {
					return
				}
			}
		}
	}
}

// load opens every topic recorded in <Dir>/topics.
func (b *Broker) load(ctx context.Context) error {
	names, err := b.fs.List(filepath.Join(b.root, topicsDir))
	if err != nil {
		return err
	}
	// The topics whose partitions are still to open: on the operating
	// system's file system, those of every topic, opened at once (see
	// openEach) once the records are read, or before an error of a record
	// is returned, so that an error of theirs comes first, as when each
	// topic's partitions were opened before the next record was read (as
	// they still are on any other file system).
	var unopened []*log.Topic
	markers := map[string]bool{}
	for _, name := range names {
		if topic, ok := b.deletionMarker(name); ok {
			markers[topic] = true
			continue
		}
		t, err := b.loadRecord(name)
		if err != nil {
			return cmp.Or(b.openTopics(ctx, unopened), err)
		}
		if t == nil {
			continue
		}
		// In the map before its partitions open, so that a failed Open
		// closes those opened (also when a Logger's handler panics).
		b.topics[t.Name] = t
		unopened = append(unopened, t)
		if b.atOnce() == 1 {
			if err := b.openTopics(ctx, unopened); err != nil {
				return err
			}
			unopened = unopened[:0]
		}
	}
	if err := b.openTopics(ctx, unopened); err != nil {
		return err
	}
	ids, err := b.readCounter(producerIDs)
	if err != nil {
		return err
	}
	b.nextPID = max(ids, b.producerIDsKnown())
	for _, name := range []string{metaTmp, producerIDs + ".tmp"} {
		b.removeTmp(filepath.Join(b.root, name))
	}
	if b.nextPID != ids {
		// The counter was lost, rolled back (a backup put back) or
		// behind partitions brought from elsewhere: an id a partition
		// knows, handed out again, would have the new producer's first
		// batch answered as the old one's duplicate, and never written.
		// The counter is set past them at once, durably, as
		// InitProducerID writes it, so that the line is logged by this
		// Open alone, not by every Open until an id is handed out. The
		// counter only grows: a crash during the write leaves the old
		// value or the new one, and the next Open takes the larger of
		// it and the partitions' again. A write that fails (a full disk)
		// fails no Open: the ids are handed out from past the
		// partitions' all the same, and the next Open tries again.
		attrs := []any{"file", b.path(producerIDs), "counter", ids, "next", b.nextPID}
		if _, err := b.writeFile(b.path(producerIDs), encodeCounter(b.nextPID)); err != nil {
			attrs = append(attrs, "err", err)
		}
		b.cfg.Logger.Warn("the producer id counter is behind the ids the partitions know: ids are handed out from past them, and the counter is set past them", attrs...)
	}
	b.removeStrays(markers)
	return nil
}

// deletionMarker reports whether name, a file of <Dir>/topics, is a
// topic's deletion marker (see deletedSuffix), and the topic's name. A
// hidden one that is macOS's AppleDouble file (._orders.del) is
// not, nor is one that cannot be read to tell.
func (b *Broker) deletionMarker(name string) (string, bool) {
	topic, ok := strings.CutSuffix(name, deletedSuffix)
	if !ok || ValidateTopicName(topic) != nil {
		return "", false
	}
	if log.SystemFile(name) {
		data, _, err := b.readFileHead(filepath.Join(b.root, topicsDir, name), len(appleDoubleMagic))
		if err != nil || bytes.HasPrefix(data, appleDoubleMagic) {
			return "", false
		}
	}
	return topic, true
}

// markerPath is the path of topic's deletion marker.
func (b *Broker) markerPath(topic string) string {
	return filepath.Join(b.root, topicsDir, topic+deletedSuffix)
}

// removeMarker removes topic's deletion marker, whose partitions'
// directories are gone and the data directory synced since, and reports
// whether it is gone. A failure is logged, not returned: the marker left
// is stale (its topic's directories are gone), the next Open removes it,
// and a CreateTopic of the name removes it first (see marked). The
// caller holds the admin token, or is Open.
func (b *Broker) removeMarker(topic string) bool {
	path := b.markerPath(topic)
	if err := b.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		b.cfg.Logger.Warn("removing a deleted topic's marker: the next Open removes it", "file", path, "err", err)
		b.marked[topic] = true
		return false
	}
	delete(b.marked, topic)
	return true
}

// loadRecord reads the topic record name (a file of <Dir>/topics) and
// returns its topic, its partitions not opened yet; nil, and no error,
// for a file that is no topic's record.
func (b *Broker) loadRecord(name string) (*log.Topic, error) {
	stem, ok := strings.CutSuffix(name, ".json")
	if !ok {
		if name == metaTmp || strings.HasSuffix(name, ".json.tmp") {
			b.removeTmp(filepath.Join(b.root, topicsDir, name))
		}
		return nil, nil // an OS's file (.DS_Store)
	}
	// A name that starts with a dot may be a topic's (Kafka refuses
	// only "." and ".."), or an OS's or an editor's file; skipping a
	// topic's record would leave its partitions to removeStrays.
	hidden := log.SystemFile(name)
	if hidden && ValidateTopicName(stem) != nil {
		return nil, nil // no topic's: an editor's lock, .#orders.json of Emacs
	}
	path := filepath.Join(b.root, topicsDir, name)
	data, size, err := b.readFileHead(path, maxTopicRecord)
	if err != nil {
		return nil, err
	}
	if hidden && bytes.HasPrefix(data, appleDoubleMagic) {
		return nil, nil // macOS's ._orders.json, beside the record of "orders"
	}
	if size > maxTopicRecord {
		// Written over with something else: not read whole (nor
		// room made for all of it) to find out.
		return nil, fmt.Errorf("%w: %s: %d bytes, more than a topic record holds (%d at most)", ErrCorruptMetadata, path, size, maxTopicRecord)
	}
	m, err := b.parseMeta(data, path)
	if err != nil {
		return nil, err
	}
	if m.ID.IsZero() {
		// Written before topic IDs: the topic gets its ID now, and
		// keeps it from here on (as Kafka gives existing topics theirs
		// when it upgrades).
		m.ID = log.NewTopicID()
		if _, err := b.writeMeta(m); err != nil {
			return nil, err
		}
	}
	return &log.Topic{Name: m.Name, ID: m.ID, Config: m.Config}, nil
}

// openTopics opens the partitions of topics (see openEach), with the
// options of the logs Open opens, adding each it opened to its topic.
func (b *Broker) openTopics(ctx context.Context, topics []*log.Topic) error {
	opts := b.logOptions()
	return b.openEach(partitionsOfTopics(topics), func(o *partitionOpen) {
		if err := ctx.Err(); err != nil {
			o.err = fmt.Errorf("runnel: opening %s cut short: %w", b.root, err)
			return
		}
		o.tried = true
		o.p, o.err = b.openPartition(ctx, o.t.Name, o.id, o.t.Config.Config, opts)
	}, func(o *partitionOpen) {
		if o.p != nil {
			o.t.Partitions = append(o.t.Partitions, o.p)
		}
	})
}

// removeTmp removes path, a temporary file of the broker's (writeFile's
// runnel.tmp, or an older runnel's <name>.tmp) that a crash, or a write
// whose rename and then removal failed, left: nothing reads it, and only
// the next write in its directory would replace it. A failure is logged,
// not returned, as removeStrays' are: the next Open tries again.
func (b *Broker) removeTmp(path string) {
	err := b.fs.Remove(path)
	switch {
	case err == nil:
		b.cfg.Logger.Info("removed a temporary file a failed write left", "file", path)
	case !errors.Is(err, fs.ErrNotExist):
		b.cfg.Logger.Warn("removing a temporary file a failed write left", "file", path, "err", err)
	}
}

// producerIDsKnown returns one past the largest producer id whose state
// a partition keeps (see log.Log.LargestProducerID), or 0.
func (b *Broker) producerIDsKnown() int64 {
	next := int64(0)
	for _, t := range b.topics {
		for _, p := range t.Partitions {
			if l := p.Log(); l != nil {
				next = max(next, l.LargestProducerID()+1)
			}
		}
	}
	return next
}

// removeStrays removes the partition directories that no topic record
// claims and that are what a failed admin call leaves: those of a deleted
// topic, whose deletion marker (markers: the topics of those Open found)
// is there, as a crash in DeleteTopic leaves them, and those that hold no
// records (see holdsRecords), as a CreateTopic or CreatePartitions that
// failed before its record was written leaves them. One that holds
// records with neither a record nor a marker of its topic is kept: its
// topic's record lost (removed by hand, a restore that left <Dir>/topics
// out, a file system that lost it), an older runnel's DeleteTopic cut
// short (it marked nothing), or a log put there from elsewhere. It is
// renamed out of the way, as Kafka since 3.7 renames a stray log
// (KAFKA-14616, KAFKA-15605; see keepStray), with a warning. Only
// directories named <valid topic>-<partition> that hold nothing but a
// log's files are touched (see removeLogDir): one holding anything else
// is not a log's, and is left; so is one past its known topic's
// partition count that holds records, with a warning: its topic's record
// may be damaged, or it may be an earlier topic's of the name.
//
// Once the data directory is synced with no directory of a marker's
// topic left, or when the topic has a record again (a CreateTopic after
// the deletion), the marker is removed. A failure is logged, not
// returned: the broker works without the cleanup, and the next Open tries
// again.
func (b *Broker) removeStrays(markers map[string]bool) {
	names, err := b.fs.List(b.root)
	if err != nil {
		b.cfg.Logger.Warn("listing the data directory for stray partitions", "dir", b.root, "err", err)
		for topic := range markers {
			b.marked[topic] = true
		}
		return
	}
	removed := false
	left := map[string]bool{} // the topics of markers with a directory left
	for _, name := range names {
		i := strings.LastIndexByte(name, '-')
		if i <= 0 {
			continue
		}
		topic, id := name[:i], name[i+1:]
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || strconv.Itoa(n) != id || ValidateTopicName(topic) != nil {
			continue
		}
		t, known := b.topics[topic]
		if known && n < len(t.Partitions) {
			continue
		}
		dir := filepath.Join(b.root, name) // dir= of the lines, as a log's (its path)
		if fi, err := b.fs.Stat(dir); err != nil || !fi.IsDir() {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				left[topic] = true
			}
			continue
		}
		held := b.holdsRecords(dir)
		if known && held {
			// Past its topic's partition count, yet holding records: no
			// failed CreatePartitions leaves that (its partitions take
			// records only once the record counts them), and a
			// partition count never goes down, so the record may be
			// damaged (a flipped bit in "Partitions" that still parses).
			// Left as it is: mended, the record finds it again. Or it is
			// an earlier topic's of the name, whose DeleteTopic failed
			// to remove it before the topic was created again with
			// fewer partitions: nothing here tells the two apart (a
			// partition's directory holds no topic ID), so it is left
			// for the operator. (A CreatePartitions that grows the topic
			// over it starts it anew, as it does any directory there.)
			b.cfg.Logger.Warn("a partition directory past its topic's partition count holds records: left as it is (the topic's record damaged, or an earlier topic's of the name?)",
				"dir", dir, "partitions", len(t.Partitions), "record", b.metaPath(topic))
			continue
		}
		deleted := !known && markers[topic]
		if held && !deleted {
			// No record, no marker (known && held was handled above).
			if b.keepStray(dir, topic, n) {
				removed = true
			}
			continue
		}
		if err := b.removeLogDir(dir); err != nil {
			b.cfg.Logger.Warn("removing a stray partition directory", "dir", dir, "err", err)
			left[topic] = true
			continue
		}
		if deleted {
			// What a DeleteTopic cut short left, as it asked.
			b.cfg.Logger.Info("removed a deleted topic's partition directory", "dir", dir, "marker", b.markerPath(topic))
		} else {
			b.cfg.Logger.Info("removed a stray partition directory", "dir", dir)
		}
		removed = true
	}
	// Synced also when nothing was removed here but a marker is to go:
	// the directories a DeleteTopic removed before a process kill (not a
	// power cut) may not be durable yet, and the marker must not be
	// removed durably before they are.
	synced := true
	if removed || len(markers) > 0 {
		if err := b.fs.SyncDir(b.root); err != nil {
			b.cfg.Logger.Warn("syncing the data directory", "dir", b.root, "err", err)
			synced = false
		}
	}
	// In the names' order, so that each Open of a directory makes the
	// same file operations.
	gone := false
	for _, topic := range slices.Sorted(maps.Keys(markers)) {
		if _, known := b.topics[topic]; !known && (left[topic] || !synced) {
			b.marked[topic] = true // for the next Open, or a CreateTopic of the name
			continue
		}
		if b.removeMarker(topic) {
			gone = true
		}
	}
	if gone {
		// Best effort: a marker a crash brings back finds no directory
		// of its topic at the next Open, which removes it again.
		if err := b.fs.SyncDir(filepath.Join(b.root, topicsDir)); err != nil {
			b.cfg.Logger.Warn("syncing the topics directory", "dir", filepath.Join(b.root, topicsDir), "err", err)
		}
	}
}

// straySuffix ends the name of a partition directory that holds records
// no topic record claims, kept by Open (see keepStray), as Kafka's
// (UnifiedLog.StrayDirSuffix).
const straySuffix = "-stray"

// keepStray renames dir, partition id of topic, a directory that holds
// records and that no topic record or deletion marker claims, out of the
// way as Kafka since 3.7 renames a stray log: <topic>-<id>.<32 hex
// digits>-stray (the topic cut short should the name pass 255 bytes, as
// Kafka's logDirNameWithSuffixCappedLength does). No partition's
// directory has that name (its part after the last '-' is no number):
// removeStrays passes over it, and CreateTopic never makes or clears it.
// It logs a Warn line naming both paths and reports whether it renamed
// dir; a directory that holds more than a log's files (see removeLogDir)
// is left as it is, with a Warn line.
func (b *Broker) keepStray(dir, topic string, id int) bool {
	if err := b.checkLogDir(dir); err != nil {
		b.cfg.Logger.Warn("keeping a stray partition directory that holds records: left as it is", "dir", dir, "err", err)
		return false
	}
	var uniq [16]byte
	rand.Read(uniq[:]) // never fails (crypto/rand, Go 1.24)
	tail := "-" + strconv.Itoa(id) + "." + hex.EncodeToString(uniq[:]) + straySuffix
	to := filepath.Join(b.root, topic[:min(len(topic), 255-len(tail))]+tail)
	if err := b.fs.Rename(dir, to); err != nil {
		b.cfg.Logger.Warn("keeping a stray partition directory that holds records: left as it is", "dir", dir, "err", err)
		return false
	}
	b.cfg.Logger.Warn("kept a stray partition directory that holds records: no topic record names it; renamed out of the way (see docs/details.md, \"A topic record lost\")",
		"dir", dir, "stray", to, "record", b.metaPath(topic))
	return true
}

// holdsRecords reports whether dir, a partition's directory, holds or
// held records: a segment whose .log is not empty, or a segment file of
// a base past offset 0 (retention or DeleteRecords removed the records
// before it, and the offsets go on from there). A new partition's log,
// which a failed CreatePartitions leaves, has neither. It also reports
// true when it cannot tell (an error), so that nothing is removed on a
// guess.
func (b *Broker) holdsRecords(dir string) bool {
	names, err := b.fs.List(dir)
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	for _, name := range names {
		base, suffix, ok := segment.ParseFileName(name)
		if ok && base > 0 {
			return true
		}
		if !ok || suffix != segment.LogSuffix {
			continue
		}
		fi, err := b.fs.Stat(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || fi.Size() > 0 {
			return true
		}
	}
	return false
}

// removeLogDir removes dir, a partition's directory, if it holds nothing
// but the files a partition's log writes (log.IsLogFile), and no
// directory (a hidden one passes IsLogFile); a missing dir is removed
// already. A directory named like a partition may be someone
// else's — the broker's Dir shared with other files, /tmp/tmux-1000 under
// a Dir of /tmp — and is then left as it is.
//
// Errors: log.ErrNotLogDir (naming the first file that is not a log's);
// file system errors.
func (b *Broker) removeLogDir(dir string) error {
	if err := b.checkLogDir(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return b.fs.RemoveAll(dir)
}

// checkLogDir returns nil if dir holds nothing but the files a
// partition's log writes, and no directory (see removeLogDir).
//
// Errors: log.ErrNotLogDir; file system errors (fs.ErrNotExist for a
// missing dir).
func (b *Broker) checkLogDir(dir string) error {
	names, err := b.fs.List(dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if !log.IsLogFile(name) {
			return fmt.Errorf("%w: %s holds %q, which no partition's log writes: it is not removed", log.ErrNotLogDir, dir, name)
		}
		// A log makes no directory, and the names an OS leaves that
		// IsLogFile passes (any '.' name) are its files: a hidden
		// directory (a user's .git) is someone else's, with all it holds.
		fi, err := b.fs.Stat(filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err == nil && fi.IsDir() {
			return fmt.Errorf("%w: %s holds the directory %q, which no partition's log makes: it is not removed", log.ErrNotLogDir, dir, name)
		}
	}
	return nil
}

// appleDoubleMagic begins an AppleDouble file, the "._" file in which
// macOS keeps a file's metadata on a file system without its own place
// for it (FAT, SMB, NFS): never a topic's record, which is JSON.
var appleDoubleMagic = []byte{0x00, 0x05, 0x16, 0x07}

// parseMeta decodes a topic's record, read from path, and checks it: a
// valid topic name that is the file's, 1 to math.MaxInt32 partitions, and a
// config that validates with the broker's defaults.
//
// Errors: ErrCorruptMetadata (wrapping the JSON decoder's error, such as a
// *json.SyntaxError, for a record that does not decode, and
// log.ErrInvalidConfig for a config invalid on its own); a
// *TopicConfigError (matching log.ErrInvalidConfig, not
// ErrCorruptMetadata) for a config valid as it was set and invalid with
// the broker's TopicDefaults.
func (b *Broker) parseMeta(data []byte, path string) (topicMeta, error) {
	var m topicMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("%w: %s: %w", ErrCorruptMetadata, path, err)
	}
	switch m.Version {
	case 0:
		// Version 0's Sync and TimestampType counted from 0 for SyncAlways
		// and CreateTime, which also stood for "the default"; version 1
		// counts from 1 and keeps 0 for the default. 0 was taken as the
		// default then too, so it stays 0.
		c := &m.Config.Config
		if c.Sync > 2 || c.TimestampType > 1 {
			return m, fmt.Errorf("%w: %s: Sync %d, TimestampType %d", ErrCorruptMetadata, path, c.Sync, c.TimestampType)
		}
		if c.Sync != 0 {
			c.Sync++
		}
		if c.TimestampType != 0 {
			c.TimestampType++
		}
		m.Version = metaVersion
	case metaVersion:
	default:
		if m.Version > metaVersion {
			return m, fmt.Errorf("%w: %s: a record of version %d, written by a newer runnel (this one reads up to %d)", ErrNewerMetadata, path, m.Version, metaVersion)
		}
		return m, fmt.Errorf("%w: %s: a record of version %d (this runnel reads up to %d)", ErrCorruptMetadata, path, m.Version, metaVersion)
	}
	// Partitions within Kafka's int32 count, as CreateTopic checks it: a
	// record of more would have Open create partitions for ever.
	if err := ValidateTopicName(m.Name); err != nil || m.Name+".json" != filepath.Base(path) ||
		m.Config.Partitions < 1 || m.Config.Partitions > math.MaxInt32 {
		return m, fmt.Errorf("%w: %s: a record of topic %q with %d partitions", ErrCorruptMetadata, path, m.Name, m.Config.Partitions)
	}
	clampJavaInts(&m.Config.Config)
	if err := b.validate(m.Config.Config); err != nil {
		if fields := b.blameDefaults(m.Config.Config); fields != nil {
			return m, &TopicConfigError{Topic: m.Name, Path: path, Defaults: fields, Err: err}
		}
		return m, fmt.Errorf("%w: %s: %w", ErrCorruptMetadata, path, err)
	}
	return m, nil
}

// clampJavaInts makes SegmentIndexBytes, IndexIntervalBytes and
// MaxMessageBytes above math.MaxInt32 math.MaxInt32. Runnels before
// 2026-12-01 (8c436e3) took such values, which log.Config.Validate now
// refuses as Kafka refuses them (its configs are Java ints): a record
// they wrote would otherwise make Open fail with ErrCorruptMetadata. The
// largest int32 works the same as anything above it: a segment holds at
// most that many bytes, so no batch is larger, no index entry further
// from the last, and no index fuller. CreateTopic and the config changes
// still refuse them.
func clampJavaInts(c *log.Config) {
	if c.SegmentIndexBytes > math.MaxInt32 {
		c.SegmentIndexBytes = math.MaxInt32
	}
	if c.IndexIntervalBytes > math.MaxInt32 {
		c.IndexIntervalBytes = math.MaxInt32
	}
	if c.MaxMessageBytes > math.MaxInt32 {
		c.MaxMessageBytes = math.MaxInt32
	}
}

// maxTopicRecord is the most bytes Open reads of a topic's record: a
// record is the topic's name (249 bytes at most), ID and config, well
// under a kilobyte; one larger than this was written over with something
// else.
const maxTopicRecord = 1 << 20

// readFileHead reads at most limit bytes from the start of path, and
// returns them with the file's size: a file larger than limit is not read
// whole (nor is room made for all of it).
func (b *Broker) readFileHead(path string, limit int) (data []byte, size int64, err error) {
	f, err := b.fs.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	size, err = f.Size()
	if err != nil {
		return nil, 0, err
	}
	data = make([]byte, min(size, int64(limit)))
	n, err := f.ReadAt(data, 0)
	if err != nil && err != io.EOF {
		return nil, 0, err
	}
	if n < len(data) {
		// The file shrank since Size: it is what was read.
		data, size = data[:n], int64(n)
	}
	return data, size, nil
}

// writeFile replaces path atomically and durably. The caller holds the
// token of path's directory — admin for the topic records in
// <Dir>/topics, pids for the producer-id counter, the one file of <Dir>
// written so — for the temporary file has one name per directory,
// short enough for any topic name (<249 characters>.json.tmp would be
// too long a file name).
//
// placed reports whether path holds data: an error with placed set is
// the fsync of path's directory, after the rename (the next Open reads
// the new content, but a crash may undo the rename).
func (b *Broker) writeFile(path string, data []byte) (placed bool, err error) {
	tmp := filepath.Join(filepath.Dir(path), metaTmp)
	f, err := b.fs.Create(tmp)
	if err != nil {
		return false, err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.fs.Rename(tmp, path)
	}
	if err != nil {
		_ = b.fs.Remove(tmp) // best effort: on a full disk, its room
		return false, err
	}
	return true, b.fs.SyncDir(filepath.Dir(path))
}

// writeMeta writes a topic's record (placed as writeFile's).
func (b *Broker) writeMeta(m topicMeta) (placed bool, err error) {
	data, err := encodeMeta(m)
	if err != nil {
		return false, err
	}
	return b.writeFile(b.metaPath(m.Name), data)
}

func (b *Broker) metaPath(topic string) string {
	return filepath.Join(b.root, topicsDir, topic+".json")
}

// replaceMeta writes m, the record of a topic whose record was prev (nil
// for a topic being created). If the write fails once the new record is
// in place (the fsync of <Dir>/topics failed after the rename), it puts
// prev back, removing the record of a topic being created: the call
// fails, and the next Open must not find a topic, partitions or config
// that the caller was told failed and that the broker does not serve
// (nor serve them, acknowledging produces to a topic or partitions whose
// record a crash could take back). The undo's own fsync may fail too:
// what a crash leaves of either is in doubt, as a failed call's effect
// is.
//
// Errors: the write's; with the undo's joined when prev could not be put
// back (the next Open then finds m).
func (b *Broker) replaceMeta(m topicMeta, prev *topicMeta) error {
	placed, err := b.writeMeta(m)
	if err == nil || !placed {
		return err
	}
	err = fmt.Errorf("runnel: %s's record was written, but %s could not be synced; the record is put back as it was: %w", m.Name, topicsDir, err)
	var undo error
	if prev == nil {
		if undo = b.fs.Remove(b.metaPath(m.Name)); undo == nil {
			b.fs.SyncDir(filepath.Join(b.root, topicsDir)) // best effort, as the undo's write's
		}
	} else if placed, uerr := b.writeMeta(*prev); !placed {
		undo = uerr
	}
	if undo != nil {
		return errors.Join(err, fmt.Errorf("runnel: putting %s's record back: %w", m.Name, undo))
	}
	return err
}

// encodeMeta is the topic record of m, of version metaVersion, as
// writeMeta writes it.
func encodeMeta(m topicMeta) ([]byte, error) {
	m.Version = metaVersion
	return json.MarshalIndent(m, "", "  ")
}

// readCounter reads the counter in the file name of the broker's
// directory: 0 if there is none. It reads no more than counterQuoted
// bytes of it: a file written over with something large is not read
// whole.
//
// Errors: ErrCorruptMetadata, naming the file by its path, as a topic's
// record's is named, and quoting no more than its first
// counterQuoted bytes (a file written over with something large would
// otherwise be quoted whole); the file system's.
func (b *Broker) readCounter(name string) (int64, error) {
	path := filepath.Join(b.root, name)
	// No more than counterQuoted bytes are read: a file larger than that
	// holds no counter, and is not read whole to be found corrupt.
	data, size, err := b.readFileHead(path, counterQuoted)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if size > int64(len(data)) {
		return 0, fmt.Errorf("%w: %s: %q... (%d bytes)", ErrCorruptMetadata, path, data, size)
	}
	v, ok := decodeCounter(data)
	if !ok {
		return 0, fmt.Errorf("%w: %s: %q", ErrCorruptMetadata, path, data)
	}
	return v, nil
}

// counterQuoted is the most of a counter file's bytes that the broker
// reads, and that the error of a corrupt one quotes: a counter is at most
// 20 bytes (19 digits and a newline), so a larger file is corrupt.
const counterQuoted = 32

// A counter's largest encoding fits in counterQuoted bytes: readCounter
// reads no more (this fails to compile should it not).
const _ = uint(counterQuoted - len("9223372036854775807\n"))

// encodeCounter is how a counter (the producer ids') is written: its
// decimal digits and a newline.
func encodeCounter(v int64) []byte { return append(strconv.AppendInt(nil, v, 10), '\n') }

// decodeCounter reads what encodeCounter wrote, and nothing else: no
// sign, space or leading zero (a file changed by something other than
// the broker is corrupt, not read as a guess), and no negative value.
func decodeCounter(data []byte) (int64, bool) {
	digits, _ := bytes.CutSuffix(data, []byte("\n"))
	v, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || v < 0 || !bytes.Equal(encodeCounter(v), data) {
		return 0, false
	}
	return v, true
}

// CreateTopic creates a topic with cfg.Partitions partitions (at least 1,
// or -1 for the broker's DefaultPartitions, as in Kafka since KIP-464) and
// cfg's configuration, whose zero fields take the broker's defaults.
//
// Admin calls run one at a time; produce and fetch, on this topic or any
// other, do not wait for them. A CreateTopic whose ctx ends, or that the
// broker's Close overtakes, stops between two partitions and creates
// nothing. On the operating system's file system ([Config].FS nil or
// vfs.OS) it creates up to eight partitions at once, as
// [Broker.CreatePartitions] does (a partition's creation is mostly
// fsyncs); on any other, one after another.
//
// Errors:
//
//   - [ErrInvalidTopic];
//   - [ErrTopicExists];
//   - log.ErrInvalidConfig;
//   - [ErrInvalidPartitions]: below 1 but -1, or above math.MaxInt32
//     (Kafka's partition count is an int32);
//   - log.ErrNotLogDir when a directory of one of its partitions' names
//     (<topic>-<N>) holds files that are not a log's (it is left as it is;
//     see [Config].Dir);
//   - [ErrClosed]; ctx's error; file system errors.
//
// A CreateTopic that fails with a file system error creates nothing
// either, also when the fsync of <Dir>/topics fails after the topic's
// record was written (it is removed again). But a crash then may still
// find the record, and the next Open the topic, empty.
//
// Where several errors apply, the first in this order is returned,
// Kafka's (its controller's createTopics) for those it has:
//
//  1. a closed broker (ErrClosed);
//  2. the name against Kafka's rule (ErrInvalidTopic);
//  3. the topic's existence (ErrTopicExists, whatever the partitions and
//     config asked for, so that a "create unless it exists" call is told
//     it exists);
//  4. a device name, then a collision with another topic's name
//     (ErrInvalidTopic): after the existence, since an existing topic's
//     own name may have either;
//  5. the config (log.ErrInvalidConfig);
//  6. the partition count (ErrInvalidPartitions).
//
// As in Kafka, a name that differs from an existing topic's only in '.'
// against '_' is refused: the two would collide in metric names. Unlike
// Kafka, so is one that differs from it in case too (or only): on a
// case-insensitive file system, as macOS's and Windows' are by default,
// the two would share their partition directories and their record.
//
// Unlike Kafka, names that would give the topic's files a device name on
// Windows are refused on every OS, so that a data directory can move to
// Windows: CON, PRN, AUX, NUL, COM1 to COM9 and LPT1 to LPT9, in any case,
// alone or before a '.' (CON, nul, aux.orders; CON-0 and orders.nul are
// allowed). A topic of such a name that an older runnel created still
// opens where its files can be.
//
// Each partition holds memory for as long as the topic exists: about 3.3
// KiB of heap idle on disk, 6 KiB in memory (docs/details.md, "Many
// partitions"), and more as it is written to. CreateTopic and
// CreatePartitions take up to math.MaxInt32 partitions in one call, where
// Kafka 4's controller refuses more than 10,000 new partitions a request
// (KAFKA-17870). Bound a count that comes from outside your code, since
// nothing else bounds the memory it asks for.
func (b *Broker) CreateTopic(ctx context.Context, name string, cfg log.TopicConfig) error {
	if b.isClosed() {
		return ErrClosed // before the name: a closed broker says so first, as its other calls do
	}
	if err := ValidateTopicName(name); err != nil {
		return err
	}
	if err := b.lockAdmin(ctx); err != nil {
		return err
	}
	defer b.unlockAdmin()
	if _, ok := b.topics[name]; ok { // under admin: no writer
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if err := checkPortableName(name); err != nil {
		return err
	}
	// A collision is a name error too: Kafka's controller tells it with
	// the name's (validateNewTopicNames), before the config and the
	// partition count.
	if err := b.checkCollision(name); err != nil {
		return err
	}
	if err := b.validate(cfg.Config); err != nil {
		return err
	}
	if cfg.Partitions == -1 {
		cfg.Partitions = b.cfg.DefaultPartitions
	}
	if cfg.Partitions < 1 || cfg.Partitions > math.MaxInt32 {
		// Kafka's partition count and IDs are int32s: a larger count
		// names partitions no request can address.
		return partitionCountError(cfg.Partitions)
	}
	return b.createAdmin(ctx, name, cfg)
}

// partitionCountError is CreateTopic's error for a partition count out of
// range, saying which counts it takes: a first user's zero TopicConfig
// has 0 partitions, which, unlike Config's zero fields, takes no default.
func partitionCountError(n int) error {
	if n > math.MaxInt32 {
		return fmt.Errorf("%w: %d, above Kafka's largest partition count (an int32)", ErrInvalidPartitions, n)
	}
	return fmt.Errorf("%w: %d (give TopicConfig.Partitions at least 1, or -1 for the broker's DefaultPartitions)", ErrInvalidPartitions, n)
}

// lockAdmin takes the admin token for an admin call, unless the broker is
// closed, Close begins, or ctx ends first.
func (b *Broker) lockAdmin(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	return b.takeToken(ctx, b.admin)
}

// takeToken takes token (a channel of capacity 1: the admin token, the
// producer-id counter's), unless the broker is closed, Close begins (it
// waits for the token too), or ctx ends first: ErrClosed or ctx's error
// then, the token not held.
func (b *Broker) takeToken(ctx context.Context, token chan struct{}) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case token <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.ctx.Done():
		return ErrClosed
	}
	if b.closed.Load() {
		<-token // nothing done under it: no lines to hand on
		return ErrClosed
	}
	return nil
}

// unlockAdmin gives the admin token back, then hands on the lines of
// the logs the call opened (see adminLogs).
func (b *Broker) unlockAdmin() {
	held, holds := b.adminLogs, b.adminHolds
	b.adminLogs, b.adminHolds = nil, nil
	<-b.admin
	if held != nil {
		holds = append(holds, held.Release)
	}
	releaseAll(holds)
}

// holdLines holds the lines of l, a partition's log, until unlockAdmin
// (see adminHolds), for an admin call that took its partition's lock
// (lockPartitions), to close it. The caller holds the admin token.
func (b *Broker) holdLines(l *log.Log) {
	b.adminHolds = append(b.adminHolds, l.HoldLines())
}

// setTopic adds or replaces (t non-nil) or removes a topic in the map. The
// caller holds the admin token.
func (b *Broker) setTopic(name string, t *log.Topic) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t == nil {
		delete(b.topics, name)
	} else {
		b.topics[name] = t
	}
}

// adminStop returns the error that stops an admin call between two
// partitions it makes: ErrClosed once Close has begun (it waits for the
// admin call in flight) — from the moment it marks the broker closed,
// when every other call starts answering ErrClosed, not only once it has
// cancelled the broker's ctx a moment later — ctx's error once ctx ended;
// nil to go on.
func (b *Broker) adminStop(ctx context.Context) error {
	if b.closed.Load() || b.ctx.Err() != nil {
		return ErrClosed
	}
	return ctx.Err()
}

// createAdmin creates a topic; the caller holds the admin token (and so
// may read b.topics without mu: every writer holds the token). It stops
// between partitions when ctx ends or the broker closes (adminStop),
// leaving nothing of the topic.
func (b *Broker) createAdmin(ctx context.Context, name string, cfg log.TopicConfig) error {
	if cfg.Partitions < 1 || cfg.Partitions > math.MaxInt32 {
		return partitionCountError(cfg.Partitions)
	}
	if _, ok := b.topics[name]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if err := checkPortableName(name); err != nil { // an auto-create's name
		return err
	}
	if err := b.checkCollision(name); err != nil {
		return err
	}
	// A crash may have left partition directories of a topic deleted, or
	// never recorded: start clean. A directory of the name that holds
	// more than a log's files is not one of those: it stays, and the
	// topic is not created.
	for i := range cfg.Partitions {
		if err := b.adminStop(ctx); err != nil {
			return err
		}
		if err := b.removeLogDir(b.partitionDir(name, i)); err != nil {
			return err
		}
	}
	t := &log.Topic{Name: name, ID: b.newTopicID(), Config: cfg}
	// tried are the partitions whose open began, and may have made their
	// directory and some of their files: a failed call removes those
	// again. The loop above left none of the others, so that a call
	// stopped early does not look at every partition's directory again,
	// past its ctx.
	var tried []int
	created := false
	defer func() {
		// Also should an open panic, or end the goroutine (the file
		// system's): openEach has handed on what was opened.
		if created {
			return
		}
		discardPartitions(t.Partitions)
		// Best effort: the next CreateTopic of the name clears them too.
		for _, i := range tried {
			b.removeLogDir(b.partitionDir(name, i))
		}
	}()
	opts := b.adminLogOptions()
	err := b.openEach(partitionsOf(t, 0, cfg.Partitions), func(o *partitionOpen) {
		if o.err = b.adminStop(ctx); o.err != nil {
			return
		}
		o.tried = true
		o.p, o.err = b.openPartition(ctx, name, o.id, cfg.Config, opts)
	}, func(o *partitionOpen) {
		if o.tried {
			tried = append(tried, o.id)
		}
		if o.p != nil {
			t.Partitions = append(t.Partitions, o.p)
		}
	})
	if err != nil {
		return err
	}
	// A deletion marker of the name that a failed removal left goes
	// first: the record's write syncs its removal (the topics directory),
	// so that no marker outlives a record written after it, for the next
	// Open to take a directory of the topic for the deleted one's, should
	// the record be lost.
	if b.marked[name] {
		if err := b.fs.Remove(b.markerPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		delete(b.marked, name)
	}
	// The record makes the topic exist: written last, durably.
	if err := b.replaceMeta(topicMeta{Name: name, ID: t.ID, Config: cfg}, nil); err != nil {
		return err
	}
	b.setTopic(name, t)
	created = true
	return nil
}

// checkCollision refuses a new topic's name that collides with an
// existing topic's: equal once '.' is '_' (Kafka's rule: the two would
// share their metric names), or, as runnel adds, in another case (on a
// case-insensitive file system the two would share their files). The
// caller holds the admin token.
//
// Topics of an older runnel may collide with each other, so a name may
// collide with several: the error names the same one each time, the
// first by name of those it collides with in '.' against '_' (Kafka's
// rule), else of those it collides with in case.
//
// Errors: ErrInvalidTopic.
func (b *Broker) checkCollision(name string) error {
	folded := strings.ReplaceAll(name, ".", "_")
	var inDots, inCase string
	for other := range b.topics {
		switch o := strings.ReplaceAll(other, ".", "_"); {
		case o == folded:
			if inDots == "" || other < inDots {
				inDots = other
			}
		case strings.EqualFold(o, folded):
			if inCase == "" || other < inCase {
				inCase = other
			}
		}
	}
	switch {
	case inDots != "":
		return fmt.Errorf("%w: %q collides with the existing topic %q ('.' and '_' are the same in metric names)", ErrInvalidTopic, name, inDots)
	case inCase != "":
		return fmt.Errorf("%w: %q collides with the existing topic %q (on a case-insensitive file system they would share their files)", ErrInvalidTopic, name, inCase)
	}
	return nil
}

// newTopicID returns a topic ID no topic of the broker has (a random
// collision is all but impossible, but costs nothing to rule out). The
// caller holds the admin token.
func (b *Broker) newTopicID() log.TopicID {
next:
	for {
		id := log.NewTopicID()
		for _, t := range b.topics {
			if t.ID == id {
				continue next
			}
		}
		return id
	}
}

// discardPartitions closes the partitions of a topic or growth that
// failed before it was served: their directories are about to be
// removed, so they are discarded (no flush, and the process forgets any
// fsync failure it remembered for their paths, which would otherwise
// cost a needless rewrite at the next open of a partition created there).
func discardPartitions(ps []*log.Partition) {
	for _, p := range ps {
		p.Discard()
	}
}

// DeleteTopic deletes a topic and all its data. Consumers reading it get
// [ErrUnknownTopic], and so do produces and fetches that were under way (a
// fetch that names the topic's ID, as consumers' do, [ErrUnknownTopicID]).
//
// Errors:
//
//   - ErrUnknownTopic;
//   - [ErrClosed], also when Close overtakes it while it waits;
//   - ctx's error, the topic left as it was;
//   - file system errors, in one [errors.Join]: the topics directory's
//     sync, then one error for each partition whose discard or removal
//     failed, in the partitions' order, then the data directory's sync.
//
// Before it renames the topic's record (its deletion marker, <Dir>/topics/<name>.del,
// removed once the partitions' directories are: a crash in between
// leaves the next Open to remove them) it takes each partition's lock,
// waiting for the appends, reads and look-ups in flight (and holding back
// those that come, on the partitions it has taken while it waits for the
// next). It waits until ctx ends or the broker's Close begins: an append
// stuck in a write to a disk that hangs holds its partition's until the
// disk answers. It then returns ctx's error (ErrClosed) and the topic is as
// it was.
//
// Once it has renamed the topic's record it goes on whatever fails. An
// error after that point means the topic is gone here, but the deletion may
// not be durable until the next Open (which removes what is left and the
// marker): after a crash before it the topic may come back, empty. Past that
// point the file operations it makes are not cut short, as Close's are
// not: removing the partitions' directories, up to eight partitions at
// once on the operating system's file system, one after another on any
// other.
func (b *Broker) DeleteTopic(ctx context.Context, name string) error {
	if err := b.lockAdmin(ctx); err != nil {
		return err
	}
	defer b.unlockAdmin()
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	// Every partition's lock first, until ctx ends: an append stuck in a
	// write to a disk that hangs holds its partition's, and nothing may
	// have changed when the call gives up.
	locks, err := b.lockPartitions(ctx, t.Partitions)
	if err != nil {
		return err
	}
	defer unlockPartitions(locks)
	// The record goes first, renamed the topic's deletion marker
	// (deletedSuffix) in one atomic step; the topics directory's sync
	// makes the deletion durable. A crash before the rename is durable
	// leaves the topic whole; one after it leaves the marker, and the
	// directories not yet removed, which the next Open removes, as the
	// marker tells it to, and then the marker (removeStrays): a partition
	// directory that no record and no marker claims is kept. Once the
	// record is renamed the topic is gone, whatever fails after: serving
	// it on would acknowledge records that the next Open, finding no
	// record, would not know. (A record already gone, removed by hand
	// while the broker ran, leaves no marker: a crash before the
	// directories are gone leaves those holding records kept as -stray.)
	if err := b.fs.Rename(b.metaPath(name), b.markerPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	err = b.fs.SyncDir(filepath.Join(b.root, topicsDir))
	b.setTopic(name, nil)
	// Each partition's log discarded and its directory removed: up to
	// eight at once on the operating system's file system, one after
	// another on any other (see closeTopics); the errors in the
	// partitions' order.
	errs := make([]error, len(locks))
	eachAtOnce(len(locks), b.atOnce(), func(i int) {
		if testHookDeletePartition != nil {
			testHookDeletePartition(name, i)
		}
		k := locks[i]
		errs[i] = k.Discard()
		k.Unlock()
		errs[i] = errors.Join(errs[i], b.fs.RemoveAll(b.partitionDir(name, i)))
	})
	// One flat join: the topics directory's sync, then each failed
	// partition's errors in the partitions' order, then the data
	// directory's sync.
	err = errors.Join(slices.Concat([]error{err}, errs, []error{b.fs.SyncDir(b.root)})...)
	if err != nil {
		// Something of the topic may be left: the marker stays for the
		// next Open.
		b.marked[name] = true
		return err
	}
	// Every directory of the topic gone, durably: the marker has done
	// its work (a crash that undoes its removal leaves it to the next
	// Open, which finds no directory of the topic and removes it).
	b.removeMarker(name)
	return nil
}

// testHookDeletePartition, when set (by tests), runs as DeleteTopic
// begins to discard topic's partition id, on the goroutine that does.
var testHookDeletePartition func(topic string, id int)

// lockPartitions takes the lock of each of ps exclusively (see
// log.Partition.Lock), in order, for an admin call that changes them all
// or none: each waits for the appends, reads and look-ups in flight on
// its partition, and holds back those that come, until ctx ends or the
// broker's Close begins. It then releases the locks it took and returns
// ctx's error, or ErrClosed. The partitions whose locks it holds while it
// waits for another's wait with it. The caller holds the admin token: no
// other call takes more than one partition's lock.
//
// The lines of each log whose lock it took are held from then on until
// the token is given back (holdLines): a line left to the lock's holder
// (an fsync round of the log's own, on a goroutine of its own, that
// fails meanwhile) is not handed on as the lock is released, neither
// when the call gives up nor once it has closed the log, under the token.
func (b *Broker) lockPartitions(ctx context.Context, ps []*log.Partition) ([]*log.PartitionLock, error) {
	if err := b.adminStop(ctx); err != nil {
		return nil, err
	}
	// Close cancels b.ctx once it has marked the broker closed, then
	// waits for the admin token: the wait ends with it.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(b.ctx, cancel)
	defer stop()
	locks := make([]*log.PartitionLock, 0, len(ps))
	for _, p := range ps {
		k, err := p.Lock(wctx)
		if err != nil {
			unlockPartitions(locks)
			if stopped := b.adminStop(ctx); stopped != nil {
				return nil, stopped // ErrClosed when Close ended the wait
			}
			return nil, err
		}
		b.holdLines(k.Log())
		locks = append(locks, k)
	}
	return locks, nil
}

// unlockPartitions releases the locks lockPartitions took (those not
// released already).
func unlockPartitions(locks []*log.PartitionLock) {
	for _, k := range locks {
		k.Unlock()
	}
}

// Topics returns the names of the broker's topics, sorted; none once the
// broker is closed.
func (b *Broker) Topics() []string {
	if b.closed.Load() {
		return nil
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	names := make([]string, 0, len(b.topics))
	for n := range b.topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// PartitionInfo describes one partition's offsets, read as of one moment.
type PartitionInfo struct {
	// Partition is the partition's number, from 0.
	Partition int32
	// LogStartOffset is the first offset a consumer can read: 0 until
	// retention or DeleteRecords moves it.
	LogStartOffset int64
	// HighWatermark is the offset below which consumers read: the end of
	// what is durable per the topic's fsync policy. That is the durable
	// offset under log.SyncAlways, the default, and the log end offset
	// otherwise.
	//
	// A consumer whose Position has reached it has read everything there
	// is to read: its lag is HighWatermark minus its Position.
	HighWatermark int64
	// LogEndOffset is the offset the next record appended gets.
	LogEndOffset int64
	// Size is the bytes of its segments' .log files (in memory, of the
	// records they hold).
	//
	// It counts its record batches, those below the log start included
	// until their whole segment goes (see DeleteRecords). It does not
	// count the index, producer-state snapshot and checkpoint files beside
	// them (0.04-0.2% more on disk with 64 KiB segments: see
	// TestFilesBesideTheLogsOnDisk).
	//
	// It is read just after the offsets, not with them.
	Size int64
	// Err is nil while the partition's log is open and not fenced.
	//
	// Otherwise it is the error every append fails with. It matches
	// log.ErrLogFenced (Kafka's KAFKA_STORAGE_ERROR, code 56: api.Code)
	// and wraps its cause, one of:
	//
	//   - a failed write or fsync fenced the log. The log refuses appends
	//     until the broker is opened again, but still serves reads (but for
	//     those of the segments a failed compaction swap removed, which
	//     answer log.ErrLogFenced until then).
	//   - a config change closed the log and could not open it again. The
	//     broker's maintenance retries; reads fail too meanwhile.
	//   - a config change could not close the log (its final fsync failed).
	//     Only opening the broker again mends it; reads fail too.
	//
	// A refusal that passes with the append is not reported
	// (log.ErrRollFailed: no file descriptor left for a new segment, say).
	//
	// The offsets do not always tell: under log.SyncNever a fenced log's
	// high watermark is its log end, as a healthy one's.
	Err error
}

// TopicInfo describes a topic.
type TopicInfo struct {
	// Name is the topic's name.
	Name string
	// ID is the topic's ID: a topic deleted and created again under the
	// same name has a new one.
	ID log.TopicID
	// Config is the configuration the topic's logs run with: the topic's
	// own fields (Overrides) over the broker's TopicDefaults, over Kafka's
	// defaults, and the negative values that stand for zero made zero (see
	// log.Config.WithDefaults).
	//
	// It is for reading. Given back to AlterTopicConfig, a field that reads
	// 0 here but stands for a default there takes that default:
	// DeleteRetentionTime, MinCleanableDirtyRatio, or a field whose broker
	// default is not 0. Give AlterTopicConfig Overrides to keep the config
	// as it is.
	Config log.TopicConfig
	// Overrides is the topic's config as CreateTopic, AlterTopicConfig or
	// UpdateTopicConfig set it, without the defaults.
	//
	//   - A non-zero field is the topic's own (what Kafka's DescribeConfigs
	//     reports with source DYNAMIC_TOPIC_CONFIG).
	//   - A zero one takes the broker's TopicDefaults or, where those are
	//     zero too, Kafka's default (Kafka's STATIC_BROKER_CONFIG and
	//     DEFAULT_CONFIG).
	//
	// AlterTopicConfig(ctx, name, info.Overrides) changes nothing.
	Overrides log.Config
	// Partitions are the topic's partitions, in order of their number.
	Partitions []PartitionInfo
}

// DescribeTopic returns a topic's configuration (as it runs, and as it
// was set) and its partitions' offsets, sizes and health (whether each
// takes appends: PartitionInfo.Err).
//
// Errors:
//
//   - [ErrUnknownTopic], also for a topic deleted during the call;
//   - [ErrInvalidTopic];
//   - [ErrClosed], also once Close closed the topic's partitions during the
//     call;
//   - ctx's error.
//
// A partition that refuses appends is no error of the call's: its
// PartitionInfo.Err says so.
//
// Some partitions are waited for, until ctx ends: one whose log is being
// opened again (after a config change), or whose lock a DeleteTopic or a
// config change holds or waits for (the lock serves its callers in turn).
// A reopen stuck in an fsync to a disk that hangs is waited for as long as
// the disk hangs, and so is a DeleteTopic that waits for an append stuck
// in a write to it. Appends, fetches and fsyncs themselves are not waited
// for.
//
// An exporter that describes every topic gives each call a deadline of its
// own, so that one such topic does not hold up the others' gauges
// (docs/details.md, "Monitoring an embedded broker").
func (b *Broker) DescribeTopic(ctx context.Context, name string) (TopicInfo, error) {
	t, err := b.topic(name) // ErrClosed before ctx's error, as every method says
	if err != nil {
		return TopicInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return TopicInfo{}, err
	}
	info := TopicInfo{Name: name, ID: t.ID, Config: log.TopicConfig{Partitions: len(t.Partitions), Config: b.withDefaults(t.Config.Config)}, Overrides: t.Config.Config,
		Partitions: make([]PartitionInfo, 0, len(t.Partitions))}
	err = b.eachState(ctx, t, true, func(p *log.Partition, st log.PartitionState) {
		info.Partitions = append(info.Partitions, PartitionInfo{
			Partition: p.ID(), LogStartOffset: st.LogStart, HighWatermark: st.HighWatermark,
			LogEndOffset: st.LogEnd, Size: st.Size, Err: st.Err,
		})
	})
	if err != nil {
		return TopicInfo{}, err
	}
	return info, nil
}

// UnwritablePartitions returns the partitions of topic that refuse appends
// now, in ascending order: those whose PartitionInfo.Err is not nil (see
// DescribeTopic). It returns nil when every one takes appends.
//
// It serves producer.HealthClient. A producer sends the records that may
// go to any partition (those without a key, with its default partitioner)
// to the partitions that take appends, as Kafka's producers send them to
// the partitions that have a leader.
//
// Unlike DescribeTopic, it waits for no partition. One being opened again
// (a config change), or whose lock an admin call holds or waits for, is
// not listed: its appends wait for it, they are not refused.
//
// Errors: as DescribeTopic's.
func (b *Broker) UnwritablePartitions(ctx context.Context, topic string) ([]int32, error) {
	t, err := b.topic(topic) // ErrClosed before ctx's error, as every method says
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var down []int32
	err = b.eachState(ctx, t, false, func(p *log.Partition, st log.PartitionState) {
		if st.Err != nil {
			down = append(down, p.ID())
		}
	})
	if err != nil {
		return nil, err
	}
	return down, nil
}

// eachState calls f with the state of each of t's partitions, in order
// (see log.Partition.State), until ctx ends (ctx's error). With wait, a
// partition whose lock is held (see DescribeTopic) is waited for; without,
// it is skipped. A partition found closed (not fenced) ends it with
// ErrUnknownTopic or ErrClosed (see partitionGone): the topic was deleted,
// or the broker closed, since t was looked up.
func (b *Broker) eachState(ctx context.Context, t *log.Topic, wait bool, f func(*log.Partition, log.PartitionState)) error {
	sctx := ctx
	if !wait {
		// State takes a free lock whatever its ctx, and gives up at once
		// with one that has ended.
		var cancel context.CancelFunc
		sctx, cancel = context.WithCancel(ctx)
		cancel()
	}
	for _, p := range t.Partitions {
		if err := ctx.Err(); err != nil {
			return err
		}
		st, err := p.State(sctx)
		if err != nil && !wait && ctx.Err() == nil {
			continue // held: not read
		}
		if err != nil {
			return err
		}
		if errors.Is(st.Err, log.ErrClosed) && !errors.Is(st.Err, log.ErrLogFenced) {
			return b.partitionGone(st.Err, p) // deleted, or the broker closed, since b.topic
		}
		f(p, st)
	}
	return nil
}

func (b *Broker) topic(name string) (*log.Topic, error) {
	if b.isClosed() {
		return nil, ErrClosed
	}
	if testHookClosedLooked != nil {
		testHookClosedLooked()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.topics[name]
	if !ok {
		if b.closed.Load() {
			// Closed since the look above: Close may have let go of
			// the topics (see release).
			return nil, ErrClosed
		}
		if err := ValidateTopicName(name); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	return t, nil
}

// AlterTopicConfig replaces a topic's configuration with cfg, whose zero
// fields take the broker's defaults, as Kafka's AlterConfigs does: a field
// left zero goes back to its default. Its partition count stays (see
// [Broker.CreatePartitions]). To change some fields and keep the others,
// use [Broker.UpdateTopicConfig].
//
// Each partition's log is closed and opened again with the new
// configuration. Appends, reads and offset look-ups in flight on it finish
// first, and the ones that come meanwhile wait for it.
//
// Errors:
//
//   - [ErrUnknownTopic];
//   - [ErrInvalidTopic]: a name no topic can have, as Kafka's AlterConfigs
//     answers it;
//   - log.ErrInvalidConfig;
//   - log.ErrLogFenced: a partition whose log failed, not reopened, when the
//     config changes;
//   - [ErrClosed], also when Close overtakes it while it waits for the
//     partitions' locks: nothing changed;
//   - ctx's error: when it ends while the call waits for the partitions'
//     locks, or for the admin token, nothing changed; or, for a config the
//     logs already run with, while trying again a partition whose last
//     reopen failed, after the record was written;
//   - file system errors. One from writing the topic's record leaves the
//     config as it was, also when the fsync of <Dir>/topics fails after the
//     record was written (the old one is written back). But a crash then
//     may still find the new one.
//
// Before it writes the topic's record, the call takes every partition's
// lock so, in order, holding those it has while it waits for the next. It
// waits until ctx ends or the broker's Close begins (an append stuck in a
// write to a disk that hangs holds its partition's until the disk
// answers): it then returns ctx's error (ErrClosed) with nothing changed.
//
// Once it has them all it writes the record and reopens each partition,
// releasing each once reopened. A partition's calls wait from the moment
// its lock is taken until its reopen is done, and the file operations of a
// reopen (the old log's fsync, the new one's recovery) are not cut short.
//
// A partition that cannot be opened again (a file-system error) answers
// log.ErrLogFenced until it is opened:
//
//   - by the broker's maintenance, which tries again every
//     MaintenanceInterval (and at each Maintain call);
//   - by a later AlterTopicConfig or UpdateTopicConfig;
//   - or by a new Open of the broker.
//
// A partition whose log failed is not reopened (log.ErrLogFenced: a write
// or fsync failed, also in the close that would reopen it: its fsync, or a
// checkpoint it writes, on a full disk say). It keeps answering
// log.ErrLogFenced, and takes the new configuration with the next Open of
// the broker (see log.Partition.Reopen).
//
// A config the logs already run with reopens nothing: the same one, one
// that sets explicitly what a default gave, or one that says "unlimited" or
// "never" another way (a RetentionBytes of -1 for the default's 0). The
// topic's record is written if the config as set changed (DescribeTopic's
// Overrides), and only partitions whose last reopen failed are tried again.
func (b *Broker) AlterTopicConfig(ctx context.Context, name string, cfg log.Config) error {
	return b.UpdateTopicConfig(ctx, name, func(c *log.Config) { *c = cfg })
}

// UpdateTopicConfig changes a topic's configuration as update says, as
// Kafka's IncrementalAlterConfigs does: update is given the topic's config
// as it was set (without the broker's defaults: a zero field takes them)
// and changes the fields it wants to. The change is atomic against other
// admin calls, validated, and applied as [Broker.AlterTopicConfig] applies
// it.
//
// Errors: as AlterTopicConfig's, and api.ErrInvalidRequest for a nil
// update.
//
// update runs while the broker's admin calls wait. It must not call them,
// nor Close, which waits for it, and must not block. A panic of its
// reaches the caller, the topic unchanged and the admin calls free to go.
//
// Kafka's SET is setting a field, its DELETE setting it to 0 (the default
// again). Its APPEND to a list starts from the topic's own value, or, when
// the topic has none, from the config's built-in default (delete for
// cleanup.policy), not from a broker-wide default
// (ConfigurationControlManager takes KafkaConfigSchema.getDefault). A zero
// field here is neither: APPEND compact is
// if c.CleanupPolicy == 0 { c.CleanupPolicy = log.Delete }, then
// c.CleanupPolicy |= log.Compact, where c.CleanupPolicy |= log.Compact
// alone, on a topic without a policy of its own, gives compact alone.
func (b *Broker) UpdateTopicConfig(ctx context.Context, name string, update func(*log.Config)) error {
	if err := b.lockAdmin(ctx); err != nil {
		return err
	}
	defer b.unlockAdmin()
	if update == nil {
		return fmt.Errorf("%w: nil update of topic %q's config", api.ErrInvalidRequest, name)
	}
	t, ok := b.topics[name]
	if !ok {
		// The name first, as Kafka's controller validates a topic
		// resource's name before it looks the topic up.
		if err := ValidateTopicName(name); err != nil {
			return err
		}
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	old := t.Config.Config
	cfg := old
	update(&cfg)
	if err := b.validate(cfg); err != nil {
		return err
	}
	reopen := b.runsAs(cfg) != b.runsAs(old)
	var locks []*log.PartitionLock
	if reopen {
		// Every partition's lock before the record is written, until ctx
		// ends: an append stuck in a write to a disk that hangs holds its
		// partition's, and nothing may have changed when the call gives
		// up.
		var err error
		if locks, err = b.lockPartitions(ctx, t.Partitions); err != nil {
			return err
		}
		defer unlockPartitions(locks)
	}
	if cfg != old {
		tc := log.TopicConfig{Partitions: len(t.Partitions), Config: cfg}
		if err := b.replaceMeta(topicMeta{Name: name, ID: t.ID, Config: tc}, &topicMeta{Name: name, ID: t.ID, Config: t.Config}); err != nil {
			return err
		}
		b.setTopic(name, &log.Topic{Name: name, ID: t.ID, Config: tc, Partitions: t.Partitions})
	}
	// The reopens' opens, and the retries of earlier ones, log to this
	// call's Held (see reopenLogs), until the token is given back.
	b.adminLogOptions()
	b.reopenLogs.Store(b.adminLogs)
	defer b.reopenLogs.Store(nil)
	var errs []error
	if !reopen {
		// The logs would run as they do: they stay open,
		// as Kafka leaves a log whose config does not change (a service
		// that sets the config it wants at each start pauses nothing).
		// Only those whose last reopen failed are tried again, as a
		// change would try them.
		for i, p := range t.Partitions {
			if _, err := p.RetryReopen(ctx); err != nil {
				errs = append(errs, fmt.Errorf("reopening %s-%d: %w", name, i, err))
			}
		}
		return errors.Join(errs...)
	}
	// Every partition, whatever fails: one that cannot be reopened answers
	// log.ErrLogFenced until maintenance or a later call reopens it.
	// The options are taken when the open runs (reopenLogOptions): a
	// RetryReopen of the maintenance hands its lines on once the
	// maintenance has given its token back, and one of a later admin
	// call once that call has given the admin token back.
	for i, k := range locks {
		err := k.Reopen(func() (*log.Log, error) {
			opts := b.reopenLogOptions()
			opts.Logger = partitionLogger(opts.Logger, name, i)
			return log.Open(b.partitionDir(name, i), b.logConfig(cfg), opts)
		})
		k.Unlock()
		if err != nil {
			errs = append(errs, fmt.Errorf("reopening %s-%d: %w", name, i, err))
		}
	}
	return errors.Join(errs...)
}

// partitionLogger is l for the log of topic's partition id: its lines
// name the partition as the broker's, the producer's and the consumer's
// do (topic=, partition=), besides their dir=. A logger that logs
// nowhere stays one (slog.DiscardHandler's WithAttrs is itself).
func partitionLogger(l *slog.Logger, topic string, id int) *slog.Logger {
	return l.With("topic", topic, "partition", id)
}

// logOptions are the options of every partition's log.
func (b *Broker) logOptions() log.Options {
	return log.Options{FS: b.fs, Clock: b.cfg.Clock, Logger: b.cfg.Logger, ProducerExpiration: b.cfg.ProducerIDExpiration, CleanerMapBytes: b.cfg.CleanerMapBytes, Go: b.goLog}
}

// adminLogOptions are logOptions for a log an admin call opens, which
// holds the admin token: its Logger holds the lines until the token is
// given back (see adminLogs).
func (b *Broker) adminLogOptions() log.Options {
	if b.adminLogs == nil {
		b.adminLogs = lockedlog.NewHeld()
	}
	opts := b.logOptions()
	opts.Logger = b.adminLogs.Logger(opts.Logger)
	return opts
}

// reopenLogOptions are logOptions for the log a partition's reopen
// opens: with the Held of the UpdateTopicConfig under way, if any (see
// reopenLogs), and that of the maintenance retrying a failed reopen, if
// any (see maintLogs). Not knowing which of the two runs the open, it
// logs through both: a line goes out once both have been released.
func (b *Broker) reopenLogOptions() log.Options {
	opts := b.logOptions()
	for _, h := range []*lockedlog.Held{b.maintLogs.Load(), b.reopenLogs.Load()} {
		if h != nil {
			opts.Logger = h.Logger(opts.Logger)
		}
	}
	return opts
}

// CreatePartitions grows a topic to n partitions.
//
// Kafka's keyed partitioning then maps some keys elsewhere, as it does in
// Kafka: a new producer at once, and one that has written to the topic once
// it looks the count up again (producer.MetadataMaxAge, 5 minutes by default,
// as Kafka's metadata.max.age.ms), until when it maps keys by the old count.
// So a moved key's records from then on are in another partition than its
// earlier ones, and for a while producers made before and after the call
// write it to both at once: a reader cannot restore their order.
//
// A topic whose keys' order matters (an aggregate's events, keyed by its
// ID) keeps its partition count: create it with the partitions it will
// need. On a compacted topic, a moved key's last value in its old
// partition stays, never replaced (nor deleted by a tombstone) by the
// records written to its new one.
//
// A consumer's AssignTopic made before does not read the new partitions
// (see consumer.Consumer.AssignTopic).
//
// Errors:
//
//   - [ErrUnknownTopic];
//   - [ErrInvalidPartitions] when n is not above the current count, or is
//     above math.MaxInt32;
//   - log.ErrNotLogDir when a directory of a new partition's name holds
//     files that are not a log's (as [Broker.CreateTopic]);
//   - [ErrClosed], also when Close overtakes it;
//   - ctx's error; file system errors.
//
// Like CreateTopic it stops between two partitions when ctx ends or the
// broker closes, and then adds none. Nor does it add any when it fails with
// a file system error. As with CreateTopic, a crash may then still find the
// new count in the topic's record, and the next Open the partitions, empty.
func (b *Broker) CreatePartitions(ctx context.Context, name string, n int) error {
	if err := b.lockAdmin(ctx); err != nil {
		return err
	}
	defer b.unlockAdmin()
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if n <= len(t.Partitions) {
		return fmt.Errorf("%w: %q has %d partitions; it can only grow", ErrInvalidPartitions, name, len(t.Partitions))
	}
	if n > math.MaxInt32 {
		return fmt.Errorf("%w: %d, above Kafka's largest partition count (an int32)", ErrInvalidPartitions, n)
	}
	added := []*log.Partition{}
	// tried are the new partitions whose open began, and may have made
	// their directory and some of their files (see CreateTopic's).
	var tried []int
	grown := false
	defer func() {
		// Also should an open panic, or end the goroutine (see
		// CreateTopic's).
		if grown {
			return
		}
		discardPartitions(added)
		// Best effort, as CreateTopic's: the next growth clears them too.
		// (A directory that holds more than a log's files stays.)
		for _, i := range tried {
			b.removeLogDir(b.partitionDir(name, i))
		}
	}()
	opts := b.adminLogOptions()
	err := b.openEach(partitionsOf(t, len(t.Partitions), n), func(o *partitionOpen) {
		if o.err = b.adminStop(ctx); o.err != nil {
			return
		}
		if o.err = b.removeLogDir(b.partitionDir(name, o.id)); o.err != nil {
			return
		}
		o.tried = true
		o.p, o.err = b.openPartition(ctx, name, o.id, t.Config.Config, opts)
	}, func(o *partitionOpen) {
		if o.tried {
			tried = append(tried, o.id)
		}
		if o.p != nil {
			added = append(added, o.p)
		}
	})
	if err != nil {
		return err
	}
	tc := t.Config
	tc.Partitions = n
	if err := b.replaceMeta(topicMeta{Name: name, ID: t.ID, Config: tc}, &topicMeta{Name: name, ID: t.ID, Config: t.Config}); err != nil {
		return err
	}
	b.setTopic(name, &log.Topic{Name: name, ID: t.ID, Config: tc, Partitions: append(t.Partitions[:len(t.Partitions):len(t.Partitions)], added...)})
	grown = true
	return nil
}

// testHookDeleteRecordsChecked, when set (by tests), runs in DeleteRecords
// once the topic's cleanup policy allowed the deletion, before it is done.
var testHookDeleteRecordsChecked func()

// DeleteRecords makes the records of a partition below offset unreadable
// (Kafka's DeleteRecords): the log start offset advances to offset, and
// whole segments below it are deleted. It returns the new log start offset
// (Kafka's low watermark).
//
// api.Latest deletes everything up to the high watermark. An offset at or
// below the current start changes nothing. As in Kafka, a topic whose
// cleanup.policy is compact alone refuses it: its records go only by
// compaction.
//
// Errors:
//
//   - [ErrUnknownTopic]; [ErrInvalidTopic];
//   - [ErrPolicyViolation] for a compacted topic without the delete policy;
//   - log.ErrOffsetOutOfRange for an offset above the high watermark, or
//     negative but api.Latest;
//   - log.ErrLogFenced;
//   - [ErrClosed];
//   - ctx's error (nothing was deleted);
//   - the file system's error (syscall.ENOSPC on a full disk) when the log
//     start offset checkpoint, or the producer-state snapshot it may need,
//     could not be written even once the whole segments below offset were
//     removed to make room for it. The partition is not fenced, its log
//     start is then the base of its first segment left, and a
//     DeleteRecords again moves it on (see log.Log.DeleteRecordsBefore).
func (b *Broker) DeleteRecords(ctx context.Context, topic string, partition int32, offset int64) (int64, error) {
	p, err := b.partition(ctx, topic, partition, false)
	if err != nil {
		return 0, err
	}
	// The policy is checked under the same hold of the partition's log as
	// the deletion: a config change to compact alone cannot come between.
	low, err := p.DeleteRecordsChecked(ctx, func(cfg log.Config, hw int64) (int64, error) {
		// Checked under the hold: a ctx that ended while the deletion
		// waited for appends in flight deletes nothing either.
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if cfg.CleanupPolicy&log.Delete == 0 {
			return 0, fmt.Errorf("%w: records of %s-%d cannot be deleted: its cleanup.policy is %s", ErrPolicyViolation, topic, partition, cfg.CleanupPolicy)
		}
		if testHookDeleteRecordsChecked != nil {
			testHookDeleteRecordsChecked()
		}
		if offset == api.Latest {
			offset = hw
		}
		if offset > hw { // the log checks its own end and below 0
			return 0, fmt.Errorf("%w: delete records before %d of %s-%d, high watermark %d", log.ErrOffsetOutOfRange, offset, topic, partition, hw)
		}
		return offset, nil
	})
	return low, b.partitionGone(err, p)
}
