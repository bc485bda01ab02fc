package record

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/runnel/runnel/compression"
)

// Builder encodes records into one RecordBatch v2 at a time. The zero value
// is ready to use; a Builder reuses its buffers, so appending records to a
// warm Builder allocates nothing. It is not safe for concurrent use.
type Builder struct {
	buf        []byte // HeaderSize bytes reserved for the header, then the records
	comp       []byte // the compressed batch, when a codec is used
	count      int32
	baseTs     int64
	maxTs      int64
	producerID int64
	prodEpoch  int16
	baseSeq    int32
	attrs      int16
	set        bool // SetProducer was called since Reset
}

// Reset empties the builder for the next batch. The producer settings are
// cleared too.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.count = 0
	b.attrs = 0
	b.set = false
}

// SetProducer records the idempotent producer's id, epoch and the sequence
// number of the batch's first record.
func (b *Builder) SetProducer(id int64, epoch int16, baseSequence int32) {
	b.producerID, b.prodEpoch, b.baseSeq, b.set = id, epoch, baseSequence, true
}

// SetTransactional sets or clears the transactional attribute.
func (b *Builder) SetTransactional(on bool) {
	if on {
		b.attrs |= AttrTransactional
	} else {
		b.attrs &^= AttrTransactional
	}
}

// NumRecords is the number of records appended since Reset.
func (b *Builder) NumRecords() int { return int(b.count) }

// Size is the size the batch would have uncompressed.
func (b *Builder) Size() int {
	if len(b.buf) == 0 {
		return HeaderSize
	}
	return len(b.buf)
}

// Append encodes one record with timestamp ts (milliseconds since the Unix
// epoch). A nil key or value is encoded as null. The builder copies what it
// is given and keeps none of the slices.
func (b *Builder) Append(ts int64, key, value []byte, headers []Header) {
	if len(b.buf) == 0 {
		if cap(b.buf) < HeaderSize {
			b.buf = make([]byte, HeaderSize, 4096)
		}
		b.buf = b.buf[:HeaderSize]
		b.baseTs, b.maxTs = ts, ts
	}
	if ts > b.maxTs {
		b.maxTs = ts
	}
	b.buf = AppendRecord(b.buf, ts-b.baseTs, int64(b.count), key, value, headers)
	b.count++
}

// Add encodes r's timestamp, key, value and headers; see Append.
func (b *Builder) Add(r *Record) {
	b.Append(r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
}

// Finish completes the batch, compressing its records with codec, and
// returns it with base offset 0. The returned Batch aliases the builder's
// memory: it is valid until the next Append, Reset or Finish. Finish on an
// empty builder returns a nil Batch: Kafka has no empty producer batches.
func (b *Builder) Finish(codec compression.Codec) (Batch, error) {
	if b.count == 0 {
		return nil, nil
	}
	out := b.buf
	if codec != compression.None {
		comp := append(b.comp[:0], b.buf[:HeaderSize]...)
		comp, err := codec.AppendEncode(comp, b.buf[HeaderSize:])
		if err != nil {
			return nil, err
		}
		b.comp = comp
		out = comp
	}
	if len(out)-LogOverhead > math.MaxInt32 {
		return nil, ErrTooLarge
	}
	pid, pepoch, seq := int64(NoProducerID), int16(NoProducerEpoch), int32(NoSequence)
	if b.set {
		pid, pepoch, seq = b.producerID, b.prodEpoch, b.baseSeq
	}
	h := out[:HeaderSize]
	binary.BigEndian.PutUint64(h[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(h[offLength:], uint32(len(out)-LogOverhead))
	binary.BigEndian.PutUint32(h[offLeaderEpoch:], 0)
	h[offMagic] = Magic
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(b.attrs)|uint16(codec)&AttrCodecMask)
	binary.BigEndian.PutUint32(h[offLastDelta:], uint32(b.count-1))
	binary.BigEndian.PutUint64(h[offBaseTime:], uint64(b.baseTs))
	binary.BigEndian.PutUint64(h[offMaxTime:], uint64(b.maxTs))
	binary.BigEndian.PutUint64(h[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(h[offProducerEp:], uint16(pepoch))
	binary.BigEndian.PutUint32(h[offBaseSeq:], uint32(seq))
	binary.BigEndian.PutUint32(h[offCount:], uint32(b.count))
	batch := Batch(out)
	batch.UpdateCRC()
	return batch, nil
}

// AppendTo finishes the batch (see Finish) and appends a copy of it to dst.
func (b *Builder) AppendTo(dst []byte, codec compression.Codec) ([]byte, error) {
	batch, err := b.Finish(codec)
	if err != nil {
		return dst, err
	}
	return append(dst, batch...), nil
}

// AppendRecord appends the encoding of one record to dst: its length, then
// attributes, timestamp and offset deltas, key, value and headers.
func AppendRecord(dst []byte, tsDelta, offsetDelta int64, key, value []byte, headers []Header) []byte {
	dst = binary.AppendVarint(dst, int64(recordBodySize(tsDelta, offsetDelta, key, value, headers)))
	dst = append(dst, 0)
	dst = binary.AppendVarint(dst, tsDelta)
	dst = binary.AppendVarint(dst, offsetDelta)
	dst = appendNullable(dst, key)
	dst = appendNullable(dst, value)
	dst = binary.AppendVarint(dst, int64(len(headers)))
	for i := range headers {
		dst = binary.AppendVarint(dst, int64(len(headers[i].Key)))
		dst = append(dst, headers[i].Key...)
		dst = appendNullable(dst, headers[i].Value)
	}
	return dst
}

// RecordSize is the encoded size of a record (its length prefix included)
// with the given deltas, key, value and headers. Producers use it to fill
// batches up to a byte budget.
func RecordSize(tsDelta, offsetDelta int64, key, value []byte, headers []Header) int {
	n := recordBodySize(tsDelta, offsetDelta, key, value, headers)
	return varintSize(int64(n)) + n
}

func recordBodySize(tsDelta, offsetDelta int64, key, value []byte, headers []Header) int {
	n := 1 + varintSize(tsDelta) + varintSize(offsetDelta) + nullableSize(key) + nullableSize(value)
	n += varintSize(int64(len(headers)))
	for i := range headers {
		n += varintSize(int64(len(headers[i].Key))) + len(headers[i].Key) + nullableSize(headers[i].Value)
	}
	return n
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 1) // zigzag(-1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

func nullableSize(b []byte) int {
	if b == nil {
		return 1
	}
	return varintSize(int64(len(b))) + len(b)
}

// varintSize is the size of x as a zigzag varint.
func varintSize(x int64) int {
	ux := uint64(x<<1) ^ uint64(x>>63)
	return (bits.Len64(ux|1) + 6) / 7
}
