package record

import "time"

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
	Topic  string
	Offset int64
	// Timestamp is the record's CreateTime, or the broker's LogAppendTime
	// when the topic says so (see TimestampType). Millisecond precision.
	Timestamp time.Time
	Key       []byte // nil is a null key
	Value     []byte // nil is a null value: a tombstone on compacted topics
	Headers   []Header

	// Batch-level fields, filled on decode (ProducerID, LeaderEpoch,
	// Sequence, ProducerEpoch), and the smaller fields.
	ProducerID    int64
	Partition     int32
	LeaderEpoch   int32
	Sequence      int32 // -1 when the producer is not idempotent
	ProducerEpoch int16
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

func (t TimestampType) String() string {
	if t == LogAppendTime {
		return "LogAppendTime"
	}
	return "CreateTime"
}
