package record

import (
	"encoding/binary"
	"hash/crc32"
	"math"

	"github.com/runnel/runnel/compression"
)

// Sizes and positions of the RecordBatch v2 header.
const (
	// HeaderSize is the size of a batch header: the smallest batch.
	HeaderSize = 61
	// LogOverhead is the size of the baseOffset and batchLength fields, which
	// the batchLength does not count.
	LogOverhead = 12
	// Magic is the only batch version runnel reads and writes.
	Magic = 2
	// MagicOffset is the position of the magic byte in a batch, which
	// scanners for batches test first.
	MagicOffset = offMagic

	offBaseOffset  = 0
	offLength      = 8
	offLeaderEpoch = 12
	offMagic       = 16
	offCRC         = 17
	offAttributes  = 21
	offLastDelta   = 23
	offBaseTime    = 27
	offMaxTime     = 35
	offProducerID  = 43
	offProducerEp  = 51
	offBaseSeq     = 53
	offCount       = 57
)

// Attribute bits of a batch.
const (
	AttrCodecMask     = 0x07
	AttrLogAppendTime = 0x08
	AttrTransactional = 0x10
	AttrControl       = 0x20
	AttrDeleteHorizon = 0x40
)

// NoProducerID, NoProducerEpoch and NoSequence mark a batch of a producer
// without idempotence.
const (
	NoProducerID    = -1
	NoProducerEpoch = -1
	NoSequence      = -1
)

// NoLeaderEpoch is the partition leader epoch of a batch no leader has
// stamped yet: what producers write (Kafka's NO_PARTITION_LEADER_EPOCH),
// and so what Builder.Finish writes.
const NoLeaderEpoch = -1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Batch is a view of exactly one encoded RecordBatch v2. Its methods read
// header fields in place; records decode lazily (Iter, Records). A Batch
// returned by Parse has a consistent length and magic; Validate checks its
// CRC.
type Batch []byte

// Parse returns the batch at the start of b, which may hold more bytes after
// it. It checks what can be checked without the CRC: that the header fits,
// the magic is 2, and the length is sane and lies within b. pos is b's
// position in its file and is only used in errors.
//
// Errors: a *CorruptError (ErrCorrupt); one for a b shorter than the
// batch it starts also matches ErrTruncated.
func Parse(b []byte, pos int64) (Batch, error) {
	if len(b) < LogOverhead {
		return nil, truncated(pos, "short batch header")
	}
	n := int64(int32(binary.BigEndian.Uint32(b[offLength:])))
	if n < HeaderSize-LogOverhead {
		return nil, corrupt(pos, "batch length below the header size")
	}
	if len(b) > offMagic && b[offMagic] != Magic {
		return nil, corrupt(pos, "unsupported magic byte")
	}
	total := n + LogOverhead
	if total > int64(len(b)) {
		return nil, truncated(pos, "batch extends past the end of the data")
	}
	return Batch(b[:total]), nil
}

// BatchSize returns the total size of the batch whose first 12 bytes (at
// least) are hdr, from its length field, without further checks; 0 if hdr is
// too short or the length is negative.
func BatchSize(hdr []byte) int64 {
	if len(hdr) < LogOverhead {
		return 0
	}
	n := int32(binary.BigEndian.Uint32(hdr[offLength:]))
	if n < 0 {
		return 0
	}
	return int64(n) + LogOverhead
}

// Validate checks the batch's CRC and the consistency of its header fields
// (record count, offset delta, timestamps). pos is used in errors. It does
// not decode records; ValidateRecords does.
//
// Errors: a *CorruptError (ErrCorrupt; ErrTruncated too for a b shorter
// than a header, compression.ErrUnknownCodec too for an unknown codec).
func (b Batch) Validate(pos int64) error {
	if len(b) < HeaderSize {
		return truncated(pos, "short batch")
	}
	if b.Magic() != Magic {
		return corrupt(pos, "unsupported magic byte")
	}
	if b.CRC() != b.ComputeCRC() {
		return corrupt(pos, "CRC mismatch")
	}
	if !b.Codec().Valid() {
		return &CorruptError{Position: pos, Reason: "unknown compression codec", Err: compression.ErrUnknownCodec}
	}
	n := b.NumRecords()
	if n < 0 {
		return corrupt(pos, "negative record count")
	}
	if b.LastOffsetDelta() < 0 || (n > 0 && int64(b.LastOffsetDelta()) < int64(n)-1) {
		return corrupt(pos, "last offset delta disagrees with the record count")
	}
	if b.BaseOffset() > math.MaxInt64-int64(b.LastOffsetDelta()) {
		return corrupt(pos, "last offset overflows")
	}
	if b.Codec() == compression.None && int64(n)*7 > int64(len(b)-HeaderSize) {
		// Every record takes at least 7 bytes (length, attributes, four
		// varints and a header count).
		return corrupt(pos, "record count larger than the records can be")
	}
	return nil
}

// ComputeCRC computes the CRC-32C of the batch's attributes..end.
func (b Batch) ComputeCRC() uint32 { return crc32.Checksum(b[offAttributes:], castagnoli) }

// UpdateCRC recomputes and stores the CRC after a change to a covered field.
func (b Batch) UpdateCRC() {
	binary.BigEndian.PutUint32(b[offCRC:], b.ComputeCRC())
}

// Size is the batch's total size in bytes.
func (b Batch) Size() int { return len(b) }

// BaseOffset is the offset of the batch's first record.
func (b Batch) BaseOffset() int64 { return int64(binary.BigEndian.Uint64(b[offBaseOffset:])) }

// SetBaseOffset assigns the batch's offsets in place; the CRC does not cover
// it.
func (b Batch) SetBaseOffset(o int64) { binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(o)) }

// LastOffset is the offset of the batch's last record.
func (b Batch) LastOffset() int64 { return b.BaseOffset() + int64(b.LastOffsetDelta()) }

// NextOffset is the offset after the batch.
func (b Batch) NextOffset() int64 { return b.LastOffset() + 1 }

// BatchLength is the length field: the size minus LogOverhead.
func (b Batch) BatchLength() int32 { return int32(binary.BigEndian.Uint32(b[offLength:])) }

// LeaderEpoch is the partition leader epoch stamped by the leader.
func (b Batch) LeaderEpoch() int32 { return int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])) }

// SetLeaderEpoch stamps the leader epoch in place; the CRC does not cover it.
func (b Batch) SetLeaderEpoch(e int32) { binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e)) }

// Magic is the batch format version (2).
func (b Batch) Magic() int8 { return int8(b[offMagic]) }

// CRC is the stored CRC-32C.
func (b Batch) CRC() uint32 { return binary.BigEndian.Uint32(b[offCRC:]) }

// Attributes is the batch's attribute bits.
func (b Batch) Attributes() int16 { return int16(binary.BigEndian.Uint16(b[offAttributes:])) }

// Codec is the batch's compression codec.
func (b Batch) Codec() compression.Codec { return compression.Codec(b.Attributes() & AttrCodecMask) }

// TimestampType says whether timestamps are CreateTime or LogAppendTime.
func (b Batch) TimestampType() TimestampType {
	if b.Attributes()&AttrLogAppendTime != 0 {
		return LogAppendTime
	}
	return CreateTime
}

// IsTransactional reports the transactional bit.
func (b Batch) IsTransactional() bool { return b.Attributes()&AttrTransactional != 0 }

// IsControl reports the control bit (transaction markers).
func (b Batch) IsControl() bool { return b.Attributes()&AttrControl != 0 }

// HasDeleteHorizon reports whether BaseTimestamp holds the delete horizon
// set by the log cleaner (KIP-534).
func (b Batch) HasDeleteHorizon() bool { return b.Attributes()&AttrDeleteHorizon != 0 }

// LastOffsetDelta is LastOffset - BaseOffset.
func (b Batch) LastOffsetDelta() int32 { return int32(binary.BigEndian.Uint32(b[offLastDelta:])) }

// BaseTimestamp is the timestamp (ms) record timestamp deltas are relative to.
func (b Batch) BaseTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offBaseTime:])) }

// MaxTimestamp is the largest record timestamp (ms), or the LogAppendTime.
func (b Batch) MaxTimestamp() int64 { return int64(binary.BigEndian.Uint64(b[offMaxTime:])) }

// ProducerID is the idempotent producer's id, or NoProducerID.
func (b Batch) ProducerID() int64 { return int64(binary.BigEndian.Uint64(b[offProducerID:])) }

// ProducerEpoch is the idempotent producer's epoch.
func (b Batch) ProducerEpoch() int16 { return int16(binary.BigEndian.Uint16(b[offProducerEp:])) }

// BaseSequence is the sequence number of the first record, or NoSequence.
func (b Batch) BaseSequence() int32 { return int32(binary.BigEndian.Uint32(b[offBaseSeq:])) }

// LastSequence is the sequence number of the last record, wrapping at
// MaxInt32 as Kafka's does; NoSequence if the batch has none.
func (b Batch) LastSequence() int32 {
	s := b.BaseSequence()
	if s == NoSequence {
		return NoSequence
	}
	return AddSequence(s, int64(b.LastOffsetDelta()))
}

// AddSequence is the sequence number n after seq (n >= 0): idempotent
// producers' sequence numbers wrap after MaxInt32 to 0, as Kafka's
// DefaultRecordBatch.incrementSequence does.
func AddSequence(seq int32, n int64) int32 {
	return int32((int64(seq) + n) % (math.MaxInt32 + 1))
}

// NumRecords is the record count field.
func (b Batch) NumRecords() int32 { return int32(binary.BigEndian.Uint32(b[offCount:])) }

// SetMaxTimestamp sets the batch's max timestamp field and recomputes the
// CRC, which covers it: a broker sets it to its records' largest (see
// CheckFraming), as Kafka's does for clients that leave it unset.
func (b Batch) SetMaxTimestamp(ts int64) {
	binary.BigEndian.PutUint64(b[offMaxTime:], uint64(ts))
	b.UpdateCRC()
}

// SetCreateTime marks the batch's timestamps as its records' create
// times (it clears the LogAppendTime attribute), sets its max timestamp to
// ts (ms), and recomputes the CRC, which covers both fields: what Kafka's
// broker does to a produced batch on a CreateTime topic
// (setMaxTimestamp(CREATE_TIME, ...)). Readers then report each record's
// own encoded timestamp.
func (b Batch) SetCreateTime(ts int64) {
	a := uint16(b.Attributes()) &^ AttrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], a)
	binary.BigEndian.PutUint64(b[offMaxTime:], uint64(ts))
	b.UpdateCRC()
}

// SetLogAppendTime marks the batch's timestamps as the broker's append time
// ts (ms) and recomputes the CRC, which covers both fields. Records keep
// their encoded timestamps; readers report ts for each of them, as Kafka's
// do.
func (b Batch) SetLogAppendTime(ts int64) {
	a := uint16(b.Attributes()) | AttrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], a)
	binary.BigEndian.PutUint64(b[offMaxTime:], uint64(ts))
	b.UpdateCRC()
}
