package record

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/runnel/runnel/compression"
)

// NoTimestamp is Kafka's timestamp of a batch with no records (-1).
const NoTimestamp = -1

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
	set        bool  // SetProducer was called since Reset
	lastDelta  int64 // offset delta of the last record, -1 before the first
	coverDelta int32 // SetLastOffsetDelta's value, -1 when not set
	horizon    int64 // delete horizon (ms), -1 when not set
	emptyMaxTs int64 // SetEmptyMaxTimestamp's value, when emptyTsSet
	emptyTsSet bool
}

// Reset empties the builder for the next batch. The producer settings are
// cleared too.
func (b *Builder) Reset() {
	b.buf = b.buf[:0]
	b.count = 0
	b.attrs = 0
	b.set = false
	b.emptyTsSet = false
	b.lastDelta, b.coverDelta, b.horizon = -1, -1, -1
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

// Grow makes room for the batch to reach n bytes uncompressed (see Size)
// without growing its buffer again, for a caller that knows the size of
// the records it is about to append.
func (b *Builder) Grow(n int) {
	if cap(b.buf) < HeaderSize {
		b.buf = make([]byte, 0, max(n, HeaderSize)) // not start's default first
	}
	b.start()
	if n > cap(b.buf) {
		b.buf = slices.Grow(b.buf, n-len(b.buf))
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
	b.AppendAt(int64(b.count), ts, key, value, headers)
}

// AppendAt is Append with an explicit offset delta, for rewriting a batch
// without some of its records (the log cleaner). Deltas must increase.
func (b *Builder) AppendAt(offsetDelta, ts int64, key, value []byte, headers []Header) {
	b.start()
	b.stamp(ts)
	b.buf = AppendRecord(b.buf, ts-b.baseTs, offsetDelta, key, value, headers)
	b.count++
	b.lastDelta = offsetDelta
}

// stamp takes the timestamp ts of the record about to be appended to the
// started batch: the first record's is the base timestamp (but with a
// delete horizon), and the max timestamp is raised to it.
func (b *Builder) stamp(ts int64) {
	if b.count == 0 {
		b.maxTs = NoTimestamp
		if b.horizon < 0 {
			b.baseTs = ts
		}
	}
	if ts > b.maxTs {
		b.maxTs = ts
	}
}

func (b *Builder) start() {
	if len(b.buf) == 0 {
		if cap(b.buf) < HeaderSize {
			b.buf = make([]byte, HeaderSize, 4096)
		}
		b.buf = b.buf[:HeaderSize]
		if b.count == 0 && b.lastDelta == 0 && b.coverDelta == 0 && b.horizon == 0 {
			// A zero Builder: set the "unset" markers.
			b.lastDelta, b.coverDelta, b.horizon = -1, -1, -1
		}
	}
}

// SetLastOffsetDelta makes the batch cover offsets up to base + d even
// when its last record has a smaller delta, or when it has no records: a
// compacted batch keeps its offset range, as Kafka's cleaner does. With it
// set, Finish of an empty builder returns a batch of no records.
func (b *Builder) SetLastOffsetDelta(d int32) {
	b.start()
	b.coverDelta = d
}

// SetEmptyMaxTimestamp sets the max timestamp that Finish writes when the
// batch has no records (see SetLastOffsetDelta) instead of NoTimestamp: the
// log cleaner keeps the max timestamp of a batch it empties, as Kafka's
// does, so that the segment's age does not change.
func (b *Builder) SetEmptyMaxTimestamp(ts int64) {
	b.emptyMaxTs, b.emptyTsSet = ts, true
}

// SetDeleteHorizon sets the batch's delete horizon (KIP-534): the base
// timestamp becomes ts, and the delete-horizon attribute is set. Call it
// before the first Append.
func (b *Builder) SetDeleteHorizon(ts int64) {
	b.start()
	b.horizon, b.baseTs = ts, ts
	b.attrs |= AttrDeleteHorizon
}

// Add encodes r's timestamp, key, value and headers; see Append. The
// timestamp is r.Timestamp.UnixMilli(), as it is: a zero Timestamp is
// year 1's (negative), and one past what an int64 of Unix milliseconds
// holds (some 292 million years either side of 1970) wraps to another;
// callers set and check it first (producer.Producer does).
//
// It is Append written out (AppendAt at the next offset delta): a
// producer adds each record of a batch with it, and the call of AppendAt
// cost some 18 instructions a record (callgrind, BenchmarkProduce).
func (b *Builder) Add(r *Record) {
	ts := r.Timestamp.UnixMilli()
	d := int64(b.count)
	b.start()
	b.stamp(ts)
	// Appended in place (the same array: append moves one to a larger
	// capacity), only the length changes: a reslice of b.buf stores no
	// pointer, so it runs no write barrier while the collector marks.
	if buf := AppendRecord(b.buf, ts-b.baseTs, d, r.Key, r.Value, r.Headers); cap(buf) == cap(b.buf) {
		b.buf = b.buf[:len(buf)]
	} else {
		b.buf = buf
	}
	b.count++
	b.lastDelta = d
}

// Finish completes the batch, compressing its records with codec, and
// returns it with base offset 0 and leader epoch NoLeaderEpoch, as Kafka's
// producers write it (the broker assigns both on append). Its max
// timestamp is its records' largest, or NoTimestamp when none is larger
// (all are below -1), as Kafka's MemoryRecordsBuilder and broker write
// it. The returned Batch aliases the builder's memory: it is valid until
// the next Append, Reset or Finish. Finish on an empty builder returns a
// nil Batch: Kafka has no empty producer batches.
//
// Errors: ErrTooLarge when the batch would be 2 GiB or more; a
// *compression.Error when codec is not a valid codec
// (compression.ErrUnknownCodec) or cannot compress the records.
func (b *Builder) Finish(codec compression.Codec) (Batch, error) {
	if !b.prepare() {
		return nil, nil
	}
	out := b.buf
	if codec != compression.None {
		comp, err := b.appendCompressed(b.comp[:0], codec, codec.DefaultLevel())
		if err != nil {
			return nil, err
		}
		b.comp = comp
		out = comp
	}
	if err := b.writeHeader(out, codec); err != nil {
		return nil, err
	}
	return Batch(out), nil
}

// AppendTo finishes the batch (see Finish) and appends a copy of it to dst.
// With a codec the records are compressed straight into dst: no copy,
// and the builder keeps no compressed copy of its own, so that a caller
// that keeps the batch (a producer, until the broker has it) can hand
// the builder, and its records encoded, to the next batch at once. On
// error it returns dst unchanged.
//
// Errors: as Finish's.
func (b *Builder) AppendTo(dst []byte, codec compression.Codec) ([]byte, error) {
	return b.AppendToLevel(dst, codec, codec.DefaultLevel())
}

// AppendToLevel is AppendTo with the records compressed at a level of
// the codec's, as Kafka numbers them (see
// compression.Codec.AppendEncodeLevel): AppendTo(dst, codec) is
// AppendToLevel(dst, codec, codec.DefaultLevel()).
//
// Errors: as Finish's, and a *compression.Error matching
// compression.ErrInvalidLevel for a level the codec does not have.
func (b *Builder) AppendToLevel(dst []byte, codec compression.Codec, level int) ([]byte, error) {
	// The level first, whether or not there are records to compress.
	if err := codec.CheckLevel(level); err != nil {
		return dst, err
	}
	if codec == compression.None {
		batch, err := b.Finish(codec)
		if err != nil {
			return dst, err
		}
		return append(dst, batch...), nil
	}
	if !b.prepare() {
		return dst, nil
	}
	out, err := b.appendCompressed(dst, codec, level)
	if err != nil {
		return dst, err
	}
	if err := b.writeHeader(out[len(dst):], codec); err != nil {
		return dst, err
	}
	return out, nil
}

// prepare sets what the header of a batch of no records says, and
// reports whether there is a batch to finish.
func (b *Builder) prepare() bool {
	if b.count == 0 && (len(b.buf) == 0 || b.coverDelta < 0) {
		return false
	}
	if b.count == 0 {
		b.maxTs = NoTimestamp
		if b.emptyTsSet {
			b.maxTs = b.emptyMaxTs
		}
		if b.horizon < 0 {
			b.baseTs = NoTimestamp
		}
	}
	return true
}

// appendCompressed appends to dst the batch's header (to be written by
// writeHeader) and its records compressed with codec at level.
func (b *Builder) appendCompressed(dst []byte, codec compression.Codec, level int) ([]byte, error) {
	out, err := codec.AppendEncodeLevel(append(dst, b.buf[:HeaderSize]...), b.buf[HeaderSize:], level)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// writeHeader writes the header of out, the whole batch (its records
// compressed with codec), and its CRC.
func (b *Builder) writeHeader(out []byte, codec compression.Codec) error {
	if len(out)-LogOverhead > math.MaxInt32 {
		return ErrTooLarge
	}
	lastDelta := b.lastDelta
	if int64(b.coverDelta) > lastDelta {
		lastDelta = int64(b.coverDelta)
	}
	pid, pepoch, seq := int64(NoProducerID), int16(NoProducerEpoch), int32(NoSequence)
	if b.set {
		pid, pepoch, seq = b.producerID, b.prodEpoch, b.baseSeq
	}
	h := Batch(out[:HeaderSize])
	binary.BigEndian.PutUint64(h[offBaseOffset:], 0)
	binary.BigEndian.PutUint32(h[offLength:], uint32(len(out)-LogOverhead))
	h.SetLeaderEpoch(NoLeaderEpoch) // the broker stamps its own
	h[offMagic] = Magic
	binary.BigEndian.PutUint16(h[offAttributes:], uint16(b.attrs)|uint16(codec)&AttrCodecMask)
	binary.BigEndian.PutUint32(h[offLastDelta:], uint32(lastDelta))
	binary.BigEndian.PutUint64(h[offBaseTime:], uint64(b.baseTs))
	binary.BigEndian.PutUint64(h[offMaxTime:], uint64(b.maxTs))
	binary.BigEndian.PutUint64(h[offProducerID:], uint64(pid))
	binary.BigEndian.PutUint16(h[offProducerEp:], uint16(pepoch))
	binary.BigEndian.PutUint32(h[offBaseSeq:], uint32(seq))
	binary.BigEndian.PutUint32(h[offCount:], uint32(b.count))
	Batch(out).UpdateCRC()
	return nil
}

// AppendRecord appends the encoding of one record to dst: its length, then
// attributes, timestamp and offset deltas, key, value and headers.
func AppendRecord(dst []byte, tsDelta, offsetDelta int64, key, value []byte, headers []Header) []byte {
	var body int
	if len(headers) == 0 {
		// recordBodySize without headers, written out: the call, with its
		// eleven words of arguments, cost about half as much again.
		body = 2 + varintSize(tsDelta) + varintSize(offsetDelta) + nullableSize(key) + nullableSize(value)
	} else {
		body = recordBodySize(tsDelta, offsetDelta, key, value, headers)
	}
	dst = appendVarint(dst, int64(body))
	dst = append(dst, 0)
	dst = appendVarint(dst, tsDelta)
	dst = appendVarint(dst, offsetDelta)
	dst = appendNullable(dst, key)
	dst = appendNullable(dst, value)
	if len(headers) == 0 {
		return append(dst, 0) // the header count, 0
	}
	dst = appendVarint(dst, int64(len(headers)))
	for i := range headers {
		dst = appendVarint(dst, int64(len(headers[i].Key)))
		dst = append(dst, headers[i].Key...)
		dst = appendNullable(dst, headers[i].Value)
	}
	return dst
}

// RecordSize is the encoded size of a record (its length prefix included)
// with the given deltas, key, value and headers. Producers use it to fill
// batches up to a byte budget. On a 32-bit platform it saturates (see
// BodySize): a record too large for any batch has a size too large for
// any batch, never a wrapped one.
func RecordSize(tsDelta, offsetDelta int64, key, value []byte, headers []Header) int {
	return SizeWithDeltas(BodySize(key, value, headers), tsDelta, offsetDelta)
}

// BodySize is the size of a record's body (all but its length prefix)
// with timestamp and offset deltas of 0. SizeWithDeltas turns it into the
// record's size at other deltas, so that a producer that sizes a record
// when it is produced and again when it is placed in a batch walks its
// key, value and headers once.
//
// On a 32-bit platform, where an int sum of lengths would wrap past
// 2 GiB (headers that share one value reach it in a few MiB of memory),
// the size is summed in int64 and saturates at 1<<31 - 32: a body at
// least that large, too large for any batch, is sized 1<<31 - 32, and
// SizeWithDeltas of it does not wrap either. On a 64-bit platform the
// sizes are exact.
func BodySize(key, value []byte, headers []Header) int {
	if strconv.IntSize == 32 { // a constant: no code on 64-bit platforms
		return bodySize32(key, value, headers)
	}
	if len(headers) == 0 {
		return BodySizeNoHeaders(key, value)
	}
	// The attributes, and the deltas of 0: a byte each.
	return 3 + nullableSize(key) + nullableSize(value) + headersSize(headers)
}

// BodySizeNoHeaders is BodySize of a record without headers (nil or
// empty): BodySize(key, value, nil). Unlike BodySize it is inlined where
// it is called, so that a producer sizes the common record, without
// headers, without a call.
func BodySizeNoHeaders(key, value []byte) int {
	if strconv.IntSize == 32 { // a constant: the inliner counts neither branch of it
		return bodySize32(key, value, nil)
	}
	// The attributes, the deltas of 0 and the header count 0: a byte each.
	return 4 + nullableSize(key) + nullableSize(value)
}

// headersSize is the size of headers encoded, their count included.
func headersSize(headers []Header) int {
	n := lengthSize(len(headers))
	for i := range headers {
		n += lengthSize(len(headers[i].Key)) + len(headers[i].Key) + nullableSize(headers[i].Value)
	}
	return n
}

// maxBodySize is where BodySize saturates on a 32-bit platform: 1<<31
// - 32. A record of this body has a size (SizeWithDeltas at deltas of 0)
// of 1<<31 - 27, more than any batch holds (its length field is an int32,
// counted after the batch's first 12 bytes, and the header takes 61),
// and at the largest deltas, 1<<31 - 9, it still fits in an int.
const maxBodySize = math.MaxInt32 - 31

// bodySize32 is BodySize summed in int64, which no lengths of slices
// can overflow, and saturated at maxBodySize: for a 32-bit platform.
func bodySize32(key, value []byte, headers []Header) int {
	n := 3 + nullableSize64(key) + nullableSize64(value) + int64(lengthSize(len(headers)))
	for i := range headers {
		n += int64(lengthSize(len(headers[i].Key))) + int64(len(headers[i].Key)) + nullableSize64(headers[i].Value)
	}
	return int(min(n, maxBodySize))
}

// nullableSize64 is nullableSize in int64, which does not wrap for a
// length near math.MaxInt32.
func nullableSize64(b []byte) int64 {
	return int64(lengthSize(len(b))) + int64(len(b))
}

// SizeWithDeltas is RecordSize of a record whose BodySize is body. It
// does not wrap on a 32-bit platform: body is at most 1<<31 - 32 there.
func SizeWithDeltas(body int, tsDelta, offsetDelta int64) int {
	n := body - 2 + varintSize(tsDelta) + varintSize(offsetDelta)
	return lengthSize(n) + n // n, the body at these deltas, is at least body (a BodySize): never negative
}

// recordBodySize is the size of a record's body at the given deltas. On
// a 32-bit platform it saturates as BodySize does (at 1<<31 - 14 with
// the largest deltas).
func recordBodySize(tsDelta, offsetDelta int64, key, value []byte, headers []Header) int {
	if strconv.IntSize == 32 { // a constant: no code on 64-bit platforms
		return bodySize32(key, value, headers) - 2 + varintSize(tsDelta) + varintSize(offsetDelta)
	}
	n := 1 + varintSize(tsDelta) + varintSize(offsetDelta) + nullableSize(key) + nullableSize(value)
	if len(headers) == 0 {
		return n + 1 // the header count, 0: no call
	}
	return n + headersSize(headers)
}

func appendNullable(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 1) // zigzag(-1)
	}
	return append(appendVarint(dst, int64(len(b))), b...)
}

// appendVarint is binary.AppendVarint, its one and two bytes (what a
// record's deltas, lengths and counts mostly take) written without
// AppendUvarint's loop.
func appendVarint(dst []byte, x int64) []byte {
	ux := uint64(x<<1) ^ uint64(x>>63)
	switch {
	case ux < 1<<7:
		return append(dst, byte(ux))
	case ux < 1<<14:
		return append(dst, byte(ux)|0x80, byte(ux>>7))
	}
	return binary.AppendUvarint(dst, ux)
}

// nullableSize is the size of b as a nullable length-prefixed field. A nil
// b, encoded as the length -1, takes one byte, as an empty one does (the
// length 0): lengthSize(0) + 0, with no branch.
func nullableSize(b []byte) int {
	return lengthSize(len(b)) + len(b)
}

// varintSize is the size of x as a zigzag varint: its zigzag encoding's
// bits b (1 for 0) in groups of 7, ceil(b/7). The encoding of x has one
// bit more than x^(x>>63) (x, or ^x for a negative x) has, and
// ceil(b/7) = (9b+64)>>6 for b from 1 to 64 (TestVarintSize): a shift,
// where /7 takes a multiply and a sign fix. Cheap enough for the
// inliner that SizeWithDeltas, three of them, is inlined where the
// producer sizes each record.
func varintSize(x int64) int {
	return (9*bits.Len64(uint64(x^(x>>63))) + 73) >> 6
}

// lengthSize is varintSize of n, a length or a size, which is never
// negative: n^(n>>63) is n, and the fold of the sign, three instructions
// the compiler keeps for a length, is left out. A record's size is sized
// with it twice a record on the producer's caller's goroutine, its key
// and value lengths once each.
func lengthSize(n int) int {
	return (9*bits.Len64(uint64(n)) + 73) >> 6
}
