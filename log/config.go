package log

import (
	"fmt"
	"time"

	"github.com/runnel/runnel/record"
)

// CleanupPolicy is cleanup.policy: what happens to old segments.
type CleanupPolicy uint8

const (
	// Delete removes whole old segments by retention time and size (the
	// default).
	Delete CleanupPolicy = 1 << iota
	// Compact keeps the latest record of each key.
	Compact
)

// String returns the policy as Kafka writes it ("delete", "compact",
// "compact,delete"), "default" for the zero value, and
// "CleanupPolicy(N)" for a value that is none of those.
func (p CleanupPolicy) String() string {
	switch p {
	case 0:
		return "default"
	case Delete:
		return "delete"
	case Compact:
		return "compact"
	case Compact | Delete:
		return "compact,delete"
	}
	return fmt.Sprintf("CleanupPolicy(%d)", uint8(p))
}

// SyncPolicy says when appended bytes are fsynced. Its zero value,
// SyncDefault, takes the default (the broker's, else SyncAlways), so that
// every policy can be asked for explicitly.
type SyncPolicy uint8

const (
	// SyncDefault takes the default policy: a broker's TopicDefaults,
	// else SyncAlways.
	SyncDefault SyncPolicy = iota
	// SyncAlways fsyncs before an append returns; concurrent appends share
	// one fsync (group commit). The default: an embedded log often has all
	// its replicas behind one power supply.
	SyncAlways
	// SyncPeriodic fsyncs once FlushMessages messages are not durable or
	// FlushInterval has passed since the last flush, whichever comes
	// first (Kafka's flush.messages and flush.ms: see their fields).
	//
	// Under it and SyncNever, the high watermark is the log end. Consumers
	// read records that are not durable yet, which a power cut may take.
	// Their offsets then go to the records appended after it (only those
	// below the log start are never handed out again).
	SyncPeriodic
	// SyncNever leaves flushing to the operating system and durability to
	// replication (Kafka's default). Segments are not synced when they
	// roll, but by the next Maintain (the broker's maintenance), Flush or
	// Close, which move the recovery point past them: Open after a crash
	// scans the segments rolled since, and the active one.
	SyncNever
)

// String returns "default", "always", "periodic" or "never", and
// "SyncPolicy(N)" for any other value.
func (p SyncPolicy) String() string {
	switch p {
	case SyncDefault:
		return "default"
	case SyncAlways:
		return "always"
	case SyncPeriodic:
		return "periodic"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncPolicy(%d)", uint8(p))
}

// TimestampType is message.timestamp.type: where the timestamps of a
// topic's records come from. Its zero value, TimestampDefault, takes the
// default (the broker's, else CreateTime).
type TimestampType uint8

const (
	// TimestampDefault takes the default: a broker's TopicDefaults, else
	// CreateTime.
	TimestampDefault TimestampType = iota
	// CreateTime keeps the producer's timestamps.
	CreateTime
	// LogAppendTime stamps each batch with the time the log appends it.
	LogAppendTime
)

// Record returns the batch attribute of t (record.CreateTime for
// TimestampDefault).
func (t TimestampType) Record() record.TimestampType {
	if t == LogAppendTime {
		return record.LogAppendTime
	}
	return record.CreateTime
}

// String returns "default", "CreateTime" or "LogAppendTime", and
// "TimestampType(N)" for any other value.
func (t TimestampType) String() string {
	switch t {
	case TimestampDefault:
		return "default"
	case CreateTime:
		return "CreateTime"
	case LogAppendTime:
		return "LogAppendTime"
	}
	return fmt.Sprintf("TimestampType(%d)", uint8(t))
}

// Config is a log's (topic's) configuration, named after Kafka's topic
// configs.
//
// The zero value of each field means the default, noted on it: a broker's
// TopicDefaults for a topic, else Kafka's. Sync is the exception: its
// default is SyncAlways (Kafka's flush.messages and flush.ms defaults are
// SyncNever).
//
// Every value but one can still be asked for explicitly:
//
//   - the enums' zero values are named ...Default;
//   - where zero is a value of its own (no lag, no limit), a negative value
//     asks for it;
//   - Kafka's index.interval.bytes=0 is IndexIntervalBytes 1, which does
//     the same.
//
// The one is Kafka's retention.bytes=0, which has no value here (see
// RetentionBytes).
//
// Durations count in whole milliseconds, as Kafka's *.ms configs do. A
// fraction of a millisecond is dropped, so a positive duration below 1 ms
// is 0 ms:
//
//   - a RetentionTime of time.Nanosecond is Kafka's retention.ms=0;
//   - a SegmentTime or MaxCompactionLag below 1 ms, which Kafka refuses as
//     below its minimum of 1, rolls the active segment at each append
//     whose records are newer than its first batch, as SegmentTime counts:
//     records of the first batch's millisecond stay in its segment;
//   - a FlushInterval below 1 ms is flush.ms=0, due at every append, and
//     one of 1.5 ms is due 1 ms after the last flush;
//   - a TimestampBeforeMax or TimestampAfterMax below 1 ms is Kafka's
//     message.timestamp.before.max.ms or after.max.ms of 0.
//
// The fields are Go values, not Kafka's name=value strings: there is no
// unknown config name to refuse, nor a value that does not parse. Kafka's
// topic configs that have no field here are listed in the repository's
// docs/details.md ("Topic configs").
//
// Open copies the Config; it never changes the caller's.
type Config struct {
	// SegmentBytes is segment.bytes: the size at which a new segment is
	// rolled. Default 1 GiB; at least 14 and at most 2 GiB - 1.
	//
	// The least is Kafka's before 4.0. runnel keeps it so that tests can
	// roll small segments. (Kafka 4 refuses less than 1 MiB, and has tests
	// set smaller segments through its internal.segment.bytes.)
	//
	// A smaller value set on a log rolls its active segment at the next
	// append that would pass it; the segments written stay as they are.
	SegmentBytes int64
	// SegmentTime is segment.ms: the active segment rolls before an append
	// whose records are more than this newer than its first batch. Default 7
	// days; negative means never (Kafka's is at least 1 ms; its largest,
	// Long.MAX_VALUE ms, never rolls either).
	//
	// The age is told by the records' timestamps, as Kafka's (a restart does
	// not reset the count). When the segment's first batch has no timestamp,
	// it is told by the wall clock since the segment was created (a cleaned
	// one: by compaction), the log opened or a truncation emptied the
	// segment. A Partition.Reopen, the broker's config change, keeps the
	// count, as Kafka's change in place does.
	SegmentTime time.Duration
	// SegmentIndexBytes is segment.index.bytes: the room of each of a
	// segment's indexes. Default 10 MiB; at least 12, one time-index entry.
	//
	// A full one rolls the segment, the time index one entry short of its
	// room, as Kafka's (the last is for the segment's max timestamp,
	// written as it rolls).
	//
	// From 12 to 23 bytes, each batch rolls a segment, as in Kafka (which
	// takes 4 to 11 too, with the same effect).
	SegmentIndexBytes int
	// IndexIntervalBytes is index.interval.bytes. Default 4096; at most
	// 2147483647, a negative one is ErrInvalidConfig. Kafka's 0 (an index
	// entry for every batch but a segment's first) is written 1 here,
	// which does the same: no batch is smaller than a byte.
	IndexIntervalBytes int
	// MaxMessageBytes is max.message.bytes: the largest batch accepted.
	// Default 1048588. At least record.HeaderSize (61 bytes, a batch
	// header alone); a smaller one is ErrInvalidConfig (Kafka takes it,
	// and then refuses every batch).
	MaxMessageBytes int
	// RetentionTime is retention.ms: segments whose newest record is older
	// are deleted, oldest first, as in Kafka. Default 7 days; negative
	// means unlimited.
	//
	//   - The active segment goes too, rolled first, once every record of
	//     the log is older (but for one whose records have no timestamp,
	//     which waits to roll).
	//   - No segment that holds records at or past the high watermark goes.
	//
	// Age is told by the records' timestamps:
	//
	//   - under CreateTime, the default, those the producer gave
	//     (record.Record's Timestamp). So what of a history imported with
	//     its events' own times is older than RetentionTime goes at the
	//     next maintenance run.
	//   - under LogAppendTime, the broker's at the append, as NATS
	//     JetStream ages its messages.
	//
	// Records go a segment at a time, at a maintenance run, never one by
	// one as JetStream's MaxAge removes messages. While records keep
	// coming, the active segment rolls only at SegmentBytes or SegmentTime
	// (1 GiB, 7 days by default). So a record may be kept up to about
	// SegmentTime past RetentionTime: a topic with a RetentionTime of an
	// hour keeps up to 7 days of a steady trickle. A SegmentTime that is a
	// fraction of RetentionTime bounds it closer, as Kafka advises.
	RetentionTime time.Duration
	// RetentionBytes is retention.bytes: old segments are deleted while
	// the log is larger. Default (0 or negative) unlimited (Kafka's default
	// is -1). Kafka's 0, which deletes every segment, the active one rolled
	// first, cannot be set: 1 comes closest, and keeps the active segment.
	//
	// It bounds each partition's log, as Kafka's does (JetStream's MaxBytes
	// bounds a whole stream), and it too deletes whole segments, never the
	// active one.
	//
	// A segment goes only while what is left holds at least RetentionBytes, so
	// a maintenance run leaves a log of up to about RetentionBytes plus a
	// segment: SegmentBytes, 1 GiB by default, or more. A segment's first
	// batch goes in whatever its size, so a batch of up to MaxMessageBytes
	// that is larger than SegmentBytes is a segment of its own.
	RetentionBytes int64
	// CleanupPolicy is cleanup.policy. Default (0) Delete. Kafka's
	// newest brokers also take an empty list (neither policy), which has
	// no value here: Delete with RetentionTime and RetentionBytes
	// negative (unlimited) keeps every record likewise. Changed on a log,
	// it applies to the segments already there at the next Maintain:
	// retention to compacted ones, compaction to all.
	CleanupPolicy CleanupPolicy
	// DeleteRetentionTime is delete.retention.ms: how long a tombstone
	// stays after compaction first reached it. Default 1 day; negative
	// means zero.
	DeleteRetentionTime time.Duration
	// MinCompactionLag is min.compaction.lag.ms: records younger than this
	// are not compacted. Default 0; negative means 0 (over a broker
	// default).
	MinCompactionLag time.Duration
	// MaxCompactionLag is max.compaction.lag.ms (KIP-354): Maintain
	// compacts a log with a dirty record older than this even when its
	// dirty ratio is below MinCleanableDirtyRatio. Default (0 or negative)
	// never, as Kafka's; when set, at least MinCompactionLag.
	//
	// Age is judged, as Kafka does, by the first batch of each dirty segment
	// (one stamped 0 or earlier has none), among the segments the pass may
	// clean, where Kafka's looks at every one but the active segment
	// (docs/details.md, "The log cleaner's rules").
	//
	// The active segment of a compacted log, which the cleaner never reads,
	// rolls at the next append once this old (as SegmentTime counts, at
	// whichever is shorter), so that its records may be cleaned. As in Kafka,
	// it never rolls on its own, so a topic that receives no more records
	// keeps every value its active segment holds, however long it waits.
	MaxCompactionLag time.Duration
	// MinCleanableDirtyRatio is min.cleanable.dirty.ratio: Maintain
	// compacts when the dirty part is more than this share of the log, as
	// Kafka's cleaner does (or when MaxCompactionLag calls for it).
	// Default 0.5; at most 1 (with which only MaxCompactionLag makes the
	// log compact); negative means 0 (compact whenever anything is dirty).
	MinCleanableDirtyRatio float64
	// Sync is the durability policy. Default (SyncDefault) SyncAlways.
	// Kafka has no such config: its flush.messages and flush.ms, which
	// default to unlimited, are SyncNever; set, they are SyncPeriodic
	// (flush.messages=1 is SyncAlways, without the group commit).
	Sync SyncPolicy
	// FlushMessages is flush.messages, for SyncPeriodic; the other
	// policies ignore it (in Kafka it applies whenever it is set).
	// Default (0 or negative) unlimited.
	//
	// An append makes a flush due when FlushMessages offsets are neither
	// durable nor to be covered by a flush already due, as Kafka counts its
	// unflushed messages from its recovery point. Whatever made records
	// durable counts (a flush made due, Log.Flush, Durability.Wait, a segment
	// roll, which syncs the segment it seals), so the next flush is due
	// FlushMessages records after it.
	//
	// A flush made due whose wait ended (its ctx) while another caller's
	// fsync, which may not cover its records, was under way no longer counts:
	// the next append makes it due again.
	FlushMessages int64
	// FlushInterval is flush.ms, for SyncPeriodic; the other policies
	// ignore it. Default (0 or negative) unlimited.
	//
	// It counts from the last flush, as Kafka's from its last flush time: one
	// made due (by an append or Maintain), or any fsync that covered every
	// record appended before it (Log.Flush, Durability.Wait, a segment roll).
	//
	// A flush made due whose wait ended (its ctx) while another caller's
	// fsync was under way no longer counts: flush.ms runs again from the
	// last flush that happened, and the next append makes the flush due
	// again if flush.ms has passed since.
	FlushInterval time.Duration
	// TimestampType is message.timestamp.type. Default (TimestampDefault)
	// CreateTime. Changed on a log, it applies to the batches appended
	// from then on; those already there keep the type they were written
	// with, as in Kafka.
	TimestampType TimestampType
	// TimestampBeforeMax is message.timestamp.before.max.ms (KIP-937): on
	// a CreateTime topic, Append refuses a batch with a record stamped more
	// than this before the log's clock (ErrInvalidTimestamp; records of
	// timestamp -1, none, are not checked), as Kafka's broker refuses it
	// (INVALID_TIMESTAMP). LogAppendTime topics, whose batches the log
	// stamps, ignore it. Changed on a log, it applies to the appends from
	// then on.
	//
	// Default (0 or negative) unlimited, as Kafka's Long.MAX_VALUE. Kafka's 0
	// (no record older than the broker's time) is a duration below 1 ms,
	// time.Nanosecond say.
	TimestampBeforeMax time.Duration
	// TimestampAfterMax is message.timestamp.after.max.ms (KIP-937): on a
	// CreateTime topic, Append refuses a batch with a record stamped more
	// than this after the log's clock (ErrInvalidTimestamp; records of
	// timestamp -1 are not checked), as Kafka's broker refuses it
	// (INVALID_TIMESTAMP). LogAppendTime topics ignore it. Changed on a log,
	// it applies to the appends from then on.
	//
	// A record stamped far in the future (a producer whose clock is wrong,
	// nanoseconds taken for milliseconds) would be its segment's newest, and
	// time retention would keep that segment, and every later one, until
	// then.
	//
	// Default one hour, Kafka 4's (KIP-1030; Kafka 3.6 to 3.9: unlimited);
	// negative means unlimited, Kafka's Long.MAX_VALUE. Kafka's 0 (no record
	// newer than the broker's time) is a duration below 1 ms, time.Nanosecond
	// say.
	TimestampAfterMax time.Duration
}

// Kafka's defaults.
const (
	DefaultSegmentBytes    = 1 << 30
	DefaultSegmentTime     = 7 * 24 * time.Hour
	DefaultMaxMessageBytes = 1048588
	DefaultRetentionTime   = 7 * 24 * time.Hour
	DefaultDeleteRetention = 24 * time.Hour
	DefaultDirtyRatio      = 0.5
	// DefaultTimestampAfterMax is Kafka 4's
	// message.timestamp.after.max.ms (KIP-1030).
	DefaultTimestampAfterMax = time.Hour
)

// WithDefaults returns c with every zero field replaced by its default
// (Kafka's, but Sync's: SyncAlways), and the negative values that mean
// zero made zero. Negative "unlimited" and "never" values are kept.
//
// Its result is the config in effect, to read; give Open the config as
// set (Open applies WithDefaults itself). A config that went through
// WithDefaults once is not the same config to it: a zero it made from a
// negative value would become the default.
func (c Config) WithDefaults() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentTime == 0 {
		c.SegmentTime = DefaultSegmentTime
	}
	if c.SegmentIndexBytes == 0 {
		c.SegmentIndexBytes = 10 << 20
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.RetentionTime == 0 {
		c.RetentionTime = DefaultRetentionTime
	}
	if c.CleanupPolicy == 0 {
		c.CleanupPolicy = Delete
	}
	if c.DeleteRetentionTime == 0 {
		c.DeleteRetentionTime = DefaultDeleteRetention
	} else if c.DeleteRetentionTime < 0 {
		c.DeleteRetentionTime = 0
	}
	if c.MinCompactionLag < 0 {
		c.MinCompactionLag = 0
	}
	if c.MinCleanableDirtyRatio == 0 {
		c.MinCleanableDirtyRatio = DefaultDirtyRatio
	} else if c.MinCleanableDirtyRatio < 0 {
		c.MinCleanableDirtyRatio = 0
	}
	if c.Sync == SyncDefault {
		c.Sync = SyncAlways
	}
	if c.FlushMessages < 0 {
		c.FlushMessages = 0
	}
	if c.FlushInterval < 0 {
		c.FlushInterval = 0
	}
	if c.TimestampType == TimestampDefault {
		c.TimestampType = CreateTime
	}
	if c.TimestampAfterMax == 0 {
		c.TimestampAfterMax = DefaultTimestampAfterMax
	}
	return c
}

// Validate reports the first field out of range, as an error matching
// ErrInvalidConfig that names the field, its Kafka config and the range
// it must be in (as Kafka's INVALID_CONFIG message does).
func (c Config) Validate() error {
	c = c.WithDefaults()
	bad := func(field, kafka string, v any, want string) error {
		return fmt.Errorf("%w: %s = %v (%s: %s)", ErrInvalidConfig, field, v, kafka, want)
	}
	switch {
	case c.SegmentBytes < 14 || c.SegmentBytes > 1<<31-1:
		return bad("SegmentBytes", "segment.bytes", c.SegmentBytes, "from 14 to 2147483647")
	// Kafka's segment.index.bytes, index.interval.bytes and
	// max.message.bytes are Java ints: a larger value is not a config
	// Kafka would take.
	case c.SegmentIndexBytes < 12 || c.SegmentIndexBytes > 1<<31-1:
		return bad("SegmentIndexBytes", "segment.index.bytes", c.SegmentIndexBytes, "from 12 to 2147483647")
	case c.IndexIntervalBytes < 0 || c.IndexIntervalBytes > 1<<31-1:
		return bad("IndexIntervalBytes", "index.interval.bytes", c.IndexIntervalBytes, "from 0 to 2147483647")
	case c.MaxMessageBytes < record.HeaderSize || c.MaxMessageBytes > 1<<31-1:
		return bad("MaxMessageBytes", "max.message.bytes", c.MaxMessageBytes, fmt.Sprintf("from %d, a batch header, to 2147483647", record.HeaderSize))
	case c.CleanupPolicy&^(Delete|Compact) != 0:
		return bad("CleanupPolicy", "cleanup.policy", c.CleanupPolicy, "Delete, Compact or both")
	case c.MaxCompactionLag > 0 && c.MaxCompactionLag.Milliseconds() < c.MinCompactionLag.Milliseconds():
		// In whole milliseconds, as they count (and as Kafka's are).
		return fmt.Errorf("%w: MaxCompactionLag = %v, less than MinCompactionLag = %v (max.compaction.lag.ms: at least min.compaction.lag.ms)", ErrInvalidConfig, c.MaxCompactionLag, c.MinCompactionLag)
	case !(c.MinCleanableDirtyRatio <= 1): // NaN too
		return bad("MinCleanableDirtyRatio", "min.cleanable.dirty.ratio", c.MinCleanableDirtyRatio, "from 0 to 1")
	case c.Sync > SyncNever:
		return bad("Sync", "flush.messages and flush.ms", c.Sync, "SyncDefault, SyncAlways, SyncPeriodic or SyncNever")
	case c.TimestampType > LogAppendTime:
		return bad("TimestampType", "message.timestamp.type", c.TimestampType, "TimestampDefault, CreateTime or LogAppendTime")
	}
	return nil
}

// Clock tells the time. Tests inject a fake one.
//
// A Log reads only the wall time of what Now returns (Unix milliseconds
// and nanoseconds), never a monotonic reading, as Kafka's brokers read
// time.milliseconds.
//
// So a step of the system clock (an NTP step, a VM restored) acts as it
// does in Kafka on retention.ms, segment.ms, the compaction lags, the
// tombstones' delete horizons, flush.ms, LogAppendTime and the producer
// ids' expiration (but for a reopen after a step back: see
// Options.ProducerExpiration):
//
//   - a step forward may delete segments, expire producer ids and remove
//     tombstones that long before their time;
//   - a step back holds them, and flush.ms's fsyncs, off by the step's
//     length, and stamps LogAppendTime batches below those before it (the
//     segments' and the time index's largest timestamps stay).
//
// A Log calls Now holding its locks (an append's stamps and producer
// state, a roll, retention, compaction). Now must return at once. It must
// not call the Log or Partition it tells the time to, nor a broker that
// holds it (a runnel.Broker's methods), which may wait for those locks:
// for ever, for a call whose ctx never ends.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
