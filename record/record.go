package record

import (
	"fmt"
	"math"
	"time"
)

// Header is a record header. A nil Value is a null header value.
type Header struct {
	Key   string
	Value []byte
}

// Record is one record. The producer fills Topic, Key, Value, Headers and
// optionally Partition and Timestamp; the log assigns Offset, and decoding
// fills every field that the batch carries.
//
// Records decoded from a batch share its bytes: Key, Value and header values
// point into the batch (or into its decompressed records), which stay valid
// for as long as the record is referenced and are never written to again.
// Do not modify them.
//
// The fields are ordered largest first so that a Record takes 144 bytes, a
// size class below the 176 of the natural order: producers allocate one
// per record, consumers one per record decoded.
type Record struct {
	// Topic names the record's topic. A producer needs it unless it has a
	// default topic; decoding fills it from the fetch.
	Topic string
	// Offset is the record's position in its partition, assigned by the
	// log when the batch is appended. A producer ignores the caller's
	// value and sets it on a delivered record (-1 when the broker reported
	// none, as may happen with acks 0).
	Offset int64
	// Timestamp is the record's CreateTime, or the broker's LogAppendTime
	// when the topic says so (see TimestampType). Millisecond precision: a
	// producer truncates it to the millisecond.
	Timestamp time.Time
	// Key is the record's key: the partitioners hash it, and compaction
	// keeps the latest record per key.
	//
	// nil is a null key, which a compacted topic refuses (INVALID_RECORD)
	// and the default partitioner spreads. An empty, non-nil Key is a key
	// like any other, as in Kafka's clients.
	Key []byte
	// Value is the record's payload. nil is a null value: a tombstone on
	// compacted topics. An empty, non-nil Value is a value, which
	// compaction keeps as it keeps any other.
	Value []byte
	// Headers are the record's headers, in order; keys may repeat.
	//
	// A decoded record without headers has nil Headers, whether it was
	// produced with nil or an empty slice. Kafka's batch format stores a
	// count, which does not tell the two apart (kgo decodes an empty,
	// non-nil slice, Kafka's Java consumer an empty Headers).
	//
	// A decoded header takes a Header (40 bytes on 64-bit platforms, and
	// its key as a string) where an empty one takes 2 bytes of its batch.
	// So a record of 1 MiB of empty headers decodes into some 20 MiB
	// (500,000 headers: 19.5 MiB measured).
	Headers []Header

	// The fields below are filled on decode. A producer ignores the
	// caller's values, except Partition, which its manual partitioner
	// reads; it sets them all on a delivered record (TimestampType to
	// LogAppendTime when the broker answered one, else CreateTime) but
	// LeaderEpoch, which a produce answer does not tell (nor does
	// Kafka's RecordMetadata): the caller's value stays there.

	// ProducerID is the idempotent producer's id, or -1.
	ProducerID int64
	// Partition is the record's partition. A producer sets it on a
	// delivered record. Of package producer's partitioners, only
	// ManualPartitioner reads the caller's value (the default one goes
	// by Key, and spreads records without one): under the others a
	// Partition the caller set is overwritten, not refused.
	Partition int32
	// LeaderEpoch is the leader epoch the batch was appended under, or -1.
	LeaderEpoch int32
	// Sequence is the record's sequence number for its producer, or -1
	// when the producer is not idempotent.
	Sequence int32
	// ProducerEpoch is the idempotent producer's epoch, or -1.
	ProducerEpoch int16
	// TimestampType says whether Timestamp is the CreateTime or the
	// broker's LogAppendTime.
	TimestampType TimestampType
}

// TimestampType says where a timestamp comes from: the producer
// (CreateTime) or the broker (LogAppendTime). It is bit 3 of the batch
// attributes.
type TimestampType int8

const (
	// CreateTime is set by the producer.
	CreateTime TimestampType = 0
	// LogAppendTime is set by the broker when it appends the batch.
	LogAppendTime TimestampType = 1
)

// String returns "CreateTime" or "LogAppendTime", and "TimestampType(N)"
// for any other value.
func (t TimestampType) String() string {
	switch t {
	case CreateTime:
		return "CreateTime"
	case LogAppendTime:
		return "LogAppendTime"
	}
	return fmt.Sprintf("TimestampType(%d)", int8(t))
}

// MillisFit reports whether t's Unix milliseconds, t.UnixMilli(), the
// Kafka timestamp of a record stamped t, fit an int64: whether t lies
// within some 292 million years of 1970, from the millisecond
// math.MinInt64 to the end of the millisecond math.MaxInt64. A time.Time
// reaches far past that both ways, and UnixMilli then wraps, to any
// value: callers that take a time from their caller check it first.
func MillisFit(t time.Time) bool { return !t.Before(firstMilli) && t.Before(pastMillis) }

// The bounds of MillisFit: firstMilli is the first instant whose Unix
// milliseconds fit an int64, pastMillis the first past the last.
var (
	firstMilli = time.UnixMilli(math.MinInt64)
	pastMillis = time.UnixMilli(math.MaxInt64).Add(time.Millisecond)
)
