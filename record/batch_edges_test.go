package record_test

// The edges of the RecordBatch v2 format: parsing, validation, iteration
// and building at their boundaries. Each test fails against a mutant of
// the package that its other tests let through. Header fields are
// addressed by their positions in Kafka's RecordBatch v2 layout, written out
// here rather than taken from the package, so that a wrong constant there
// shows.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Positions of RecordBatch v2 header fields (Kafka's DefaultRecordBatch).
const (
	posLength     = 8
	posMagic      = 16
	posAttributes = 21
	posLastDelta  = 23
	posCount      = 57
)

// gapBatch returns a copy of a batch of n records with timestamps from ts
// up, each with a one-byte key and value.
func gapBatch(t *testing.T, n int, ts int64, codec compression.Codec) record.Batch {
	t.Helper()
	var b record.Builder
	for i := range n {
		b.Append(ts+int64(i), []byte{'k'}, []byte{byte(i)}, nil)
	}
	batch, err := b.Finish(codec)
	require.NoError(t, err)
	return append(record.Batch(nil), batch...)
}

// emptyBatch returns a copy of a batch of no records that covers offset
// deltas 0..last, as the log cleaner writes one.
func emptyBatch(t *testing.T, last int32) record.Batch {
	t.Helper()
	var b record.Builder
	b.SetLastOffsetDelta(last)
	batch, err := b.Finish(compression.None)
	require.NoError(t, err)
	require.NotNil(t, batch)
	return append(record.Batch(nil), batch...)
}

// put32 stores v at pos and recomputes the CRC.
func put32(b record.Batch, pos int, v uint32) record.Batch {
	binary.BigEndian.PutUint32(b[pos:], v)
	b.UpdateCRC()
	return b
}

// requireCorrupt checks err is a *CorruptError and whether it is a
// truncation.
func requireCorrupt(t *testing.T, err error, truncated bool) {
	t.Helper()
	require.ErrorIs(t, err, record.ErrCorrupt)
	var ce *record.CorruptError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, truncated, errors.Is(err, record.ErrTruncated), "%v", err)
}

// TestParseBoundaries: Parse takes a batch of only a header, refuses a
// length one below it as corrupt rather than torn, and tells a torn batch
// (ErrTruncated) from one whose readable bytes are already wrong: a length
// field below the header size in exactly 12 bytes, a wrong magic byte in
// exactly 17.
func TestParseBoundaries(t *testing.T) {
	empty := emptyBatch(t, 3)
	require.Len(t, empty, record.HeaderSize)
	got, err := record.Parse(empty, 0)
	require.NoError(t, err)
	require.Len(t, got, record.HeaderSize)
	require.NoError(t, got.Validate(0))

	short := put32(append(record.Batch(nil), empty...), posLength, record.HeaderSize-record.LogOverhead-1)
	_, err = record.Parse(short, 0)
	requireCorrupt(t, err, false)

	zeroLen := make([]byte, record.LogOverhead) // length field 0
	_, err = record.Parse(zeroLen, 0)
	requireCorrupt(t, err, false)

	full := gapBatch(t, 3, 1000, compression.None)
	full[posMagic] = 1
	_, err = record.Parse(full[:posMagic+1], 0)
	requireCorrupt(t, err, false)
	_, err = record.Parse(full[:posMagic], 0)
	requireCorrupt(t, err, true)
}

// TestBatchSize: the size comes from the first 12 bytes alone, and a
// negative length field gives 0.
func TestBatchSize(t *testing.T) {
	b := gapBatch(t, 3, 1000, compression.None)
	require.EqualValues(t, len(b), record.BatchSize(b[:record.LogOverhead]))
	require.Zero(t, record.BatchSize(b[:record.LogOverhead-1]))
	neg := append([]byte(nil), b[:record.LogOverhead]...)
	binary.BigEndian.PutUint32(neg[posLength:], 0xfffffff0)
	require.Zero(t, record.BatchSize(neg))
}

// TestValidateMagic: the CRC does not cover the magic byte, so Validate
// must check it itself.
func TestValidateMagic(t *testing.T) {
	b := gapBatch(t, 3, 1000, compression.None)
	b[posMagic] = 1
	require.Equal(t, b.CRC(), b.ComputeCRC())
	requireCorrupt(t, b.Validate(0), false)
}

// TestValidateLastOffsetDelta: the last offset delta is at least the
// record count minus one, and never negative, not even in a batch of no
// records. (The base offset is math.MinInt64 so that the overflow check,
// which a negative delta also upsets, passes it.)
func TestValidateLastOffsetDelta(t *testing.T) {
	empty := emptyBatch(t, 0)
	empty.SetBaseOffset(math.MinInt64)
	requireCorrupt(t, put32(empty, posLastDelta, 0xffffffff).Validate(0), false)

	b := gapBatch(t, 3, 1000, compression.None)
	require.NoError(t, b.Validate(0))
	requireCorrupt(t, put32(b, posLastDelta, 1).Validate(0), false)
}

// TestValidateLastOffsetOverflow: a batch may end exactly at
// math.MaxInt64, not past it.
func TestValidateLastOffsetOverflow(t *testing.T) {
	b := gapBatch(t, 3, 1000, compression.None)
	b.SetBaseOffset(math.MaxInt64 - 2)
	require.NoError(t, b.Validate(0))
	require.Equal(t, int64(math.MaxInt64), b.LastOffset())
	b.SetBaseOffset(math.MaxInt64 - 1)
	requireCorrupt(t, b.Validate(0), false)
}

// TestValidateCountBound: every record takes at least 7 bytes, so nine of
// the smallest fill 63 bytes and pass, while a count of ten for them is
// refused by Validate already, before any record is decoded.
func TestValidateCountBound(t *testing.T) {
	var bl record.Builder
	for range 9 {
		bl.Append(1000, nil, nil, nil)
	}
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	b = append(record.Batch(nil), b...)
	require.Len(t, b, record.HeaderSize+9*7)
	require.NoError(t, b.Validate(0))
	require.NoError(t, b.ValidateRecords(0, 0))

	binary.BigEndian.PutUint32(b[posLastDelta:], 9)
	requireCorrupt(t, put32(b, posCount, 10).Validate(0), false)
}

// TestAttributeBits: the attribute bits are Kafka's, both as read from a
// batch and as the Builder and setters write them.
func TestAttributeBits(t *testing.T) {
	require.EqualValues(t, 0x08, record.AttrLogAppendTime)
	require.EqualValues(t, 0x10, record.AttrTransactional)
	require.EqualValues(t, 0x20, record.AttrControl)
	require.EqualValues(t, 0x40, record.AttrDeleteHorizon)

	b := gapBatch(t, 1, 1000, compression.None)
	set := func(attrs uint16) {
		binary.BigEndian.PutUint16(b[posAttributes:], attrs)
	}
	set(0x08)
	require.Equal(t, record.LogAppendTime, b.TimestampType())
	require.False(t, b.IsTransactional() || b.IsControl() || b.HasDeleteHorizon())
	set(0x10)
	require.True(t, b.IsTransactional())
	require.False(t, b.IsControl() || b.HasDeleteHorizon())
	require.Equal(t, record.CreateTime, b.TimestampType())
	set(0x20)
	require.True(t, b.IsControl())
	require.False(t, b.IsTransactional() || b.HasDeleteHorizon())
	set(0x40)
	require.True(t, b.HasDeleteHorizon())
	require.False(t, b.IsTransactional() || b.IsControl())

	var bl record.Builder
	bl.SetTransactional(true)
	bl.SetDeleteHorizon(500)
	bl.Append(1000, nil, nil, nil)
	w, err := bl.Finish(compression.Gzip)
	require.NoError(t, err)
	require.EqualValues(t, 0x10|0x40|1, binary.BigEndian.Uint16(w[posAttributes:]))
	w.SetLogAppendTime(2000)
	require.EqualValues(t, 0x08|0x10|0x40|1, binary.BigEndian.Uint16(w[posAttributes:]))
}

// TestSetMaxTimestampKeepsCRC: the CRC covers the max timestamp, so
// SetMaxTimestamp must recompute it.
func TestSetMaxTimestampKeepsCRC(t *testing.T) {
	b := gapBatch(t, 3, 1000, compression.None)
	b.SetMaxTimestamp(5000)
	require.EqualValues(t, 5000, b.MaxTimestamp())
	require.NoError(t, b.Validate(0))
}

// TestIterNegativeCount: Iter itself refuses a negative record count.
func TestIterNegativeCount(t *testing.T) {
	b := put32(emptyBatch(t, 0), posCount, 0xffffffff)
	_, err := b.Iter(0, 0)
	requireCorrupt(t, err, false)
}

// TestIterBufferIgnoresBufContents: IterBuffer decompresses into buf[:0]:
// what buf held before is not taken for records.
func TestIterBufferIgnoresBufContents(t *testing.T) {
	b := gapBatch(t, 3, 1000, compression.Gzip)
	buf := []byte("stale bytes from an earlier batch")
	it, err := b.IterBuffer(0, 0, buf)
	require.NoError(t, err)
	var r record.Record
	n := 0
	for it.Next(&r) {
		require.Equal(t, []byte{byte(n)}, r.Value)
		n++
	}
	require.NoError(t, it.Err())
	require.Equal(t, 3, n)
}

// zeroLengthRecord returns a batch of one record whose length varint is 0,
// padded with zeros to the 7 bytes the smallest record takes, so that
// Validate lets it through to the record decoders.
func zeroLengthRecord(t *testing.T) record.Batch {
	t.Helper()
	b := gapBatch(t, 1, 1000, compression.None)
	b = b[:record.HeaderSize+7]
	clear(b[record.HeaderSize:]) // a length of zigzag 0, then padding
	binary.BigEndian.PutUint32(b[posLength:], uint32(len(b)-record.LogOverhead))
	b.UpdateCRC()
	return b
}

// TestZeroLengthRecord: a record length of 0 (no room even for the
// attributes byte) is corrupt for every decoder, never a panic.
func TestZeroLengthRecord(t *testing.T) {
	b := zeroLengthRecord(t)
	require.NoError(t, b.Validate(0))
	require.NotPanics(t, func() {
		requireCorrupt(t, b.ValidateRecords(0, 0), false)
		_, err := b.CheckFraming(0)
		requireCorrupt(t, err, false)
		_, _, err = b.CheckFramingBuffer(0, 0, nil)
		requireCorrupt(t, err, false)
	})
}

// TestSequenceFromZero: a base sequence of 0 is a real sequence, and each
// record carries the producer's epoch.
func TestSequenceFromZero(t *testing.T) {
	var bl record.Builder
	bl.SetProducer(42, 7, 0)
	for i := range 3 {
		bl.Append(1000, nil, []byte{byte(i)}, nil)
	}
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	i := 0
	for r, err := range b.Records() {
		require.NoError(t, err)
		require.EqualValues(t, i, r.Sequence)
		require.EqualValues(t, 42, r.ProducerID)
		require.EqualValues(t, 7, r.ProducerEpoch)
		i++
	}
	require.Equal(t, 3, i)
	require.EqualValues(t, 2, b.LastSequence())
}

// TestRecordsYieldsErrors: Records ends with the error that stopped it,
// whether Iter failed or a record did.
func TestRecordsYieldsErrors(t *testing.T) {
	collect := func(b record.Batch) (n int, errs []error) {
		for r, err := range b.Records() {
			if err != nil {
				require.Nil(t, r)
				errs = append(errs, err)
				continue
			}
			n++
		}
		return n, errs
	}

	bad := gapBatch(t, 3, 1000, compression.Gzip)
	bad = bad[:len(bad)-4] // the gzip trailer's size
	n, errs := collect(bad)
	require.Zero(t, n)
	require.Len(t, errs, 1)
	requireCorrupt(t, errs[0], false)

	short := gapBatch(t, 3, 1000, compression.None)
	binary.BigEndian.PutUint32(short[posLastDelta:], 3)
	put32(short, posCount, 4)
	n, errs = collect(short)
	require.Equal(t, 3, n)
	require.Len(t, errs, 1)
	requireCorrupt(t, errs[0], false)
}

// TestDecodedFieldsDoNotShareCapacity: a record's key is capped at its
// length, so appending to it cannot overwrite the value that follows it
// in the batch.
func TestDecodedFieldsDoNotShareCapacity(t *testing.T) {
	var bl record.Builder
	bl.Append(1000, []byte("key"), []byte("value"), []record.Header{{Key: "h", Value: []byte("hv")}})
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	for r, err := range b.Records() {
		require.NoError(t, err)
		require.Equal(t, len(r.Key), cap(r.Key))
		require.Equal(t, len(r.Value), cap(r.Value))
		require.Equal(t, len(r.Headers[0].Value), cap(r.Headers[0].Value))
		_ = append(r.Key, "XXXXX"...)
		require.Equal(t, "value", string(r.Value))
	}
}

// TestCheckFramingNegativeCount: CheckFraming refuses a negative record
// count even when there are no record bytes to disagree with it.
func TestCheckFramingNegativeCount(t *testing.T) {
	b := put32(emptyBatch(t, 0), posCount, 0xffffffff)
	_, err := b.CheckFraming(0)
	requireCorrupt(t, err, false)
}

// TestCheckFramingNegativeTimestamps: the largest timestamp is the
// records' largest even when all are below NoTimestamp.
func TestCheckFramingNegativeTimestamps(t *testing.T) {
	var bl record.Builder
	bl.Append(-5, nil, nil, nil)
	bl.Append(-3, nil, nil, nil)
	bl.Append(-4, nil, nil, nil)
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	maxTs, err := b.CheckFraming(0)
	require.NoError(t, err)
	require.EqualValues(t, -3, maxTs)
}

// TestBuilderResetClearsBatchSettings: Reset forgets the attributes, the
// empty batch's max timestamp, the first batch's base timestamp and its
// base offset, and a Grow after it does not make an empty batch.
func TestBuilderResetClearsBatchSettings(t *testing.T) {
	var bl record.Builder
	bl.SetTransactional(true)
	bl.SetEmptyMaxTimestamp(777)
	bl.Append(1000, nil, nil, nil)
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	b.SetBaseOffset(500) // the caller's, in the builder's memory

	bl.Reset()
	bl.Append(5000, nil, nil, nil)
	b, err = bl.Finish(compression.None)
	require.NoError(t, err)
	require.False(t, b.IsTransactional())
	require.EqualValues(t, 5000, b.BaseTimestamp())
	require.Zero(t, b.BaseOffset())

	bl.Reset()
	bl.SetLastOffsetDelta(2)
	b, err = bl.Finish(compression.None)
	require.NoError(t, err)
	require.EqualValues(t, record.NoTimestamp, b.MaxTimestamp())

	bl.Reset()
	bl.Grow(1000)
	b, err = bl.Finish(compression.None)
	require.NoError(t, err)
	require.Nil(t, b)
}

// TestBuilderEmptyBatch: an empty batch's base timestamp is NoTimestamp
// (even after a batch with records), its max timestamp the one set, and
// SetLastOffsetDelta(0) is enough to make one.
func TestBuilderEmptyBatch(t *testing.T) {
	var bl record.Builder
	require.Equal(t, record.HeaderSize, bl.Size())
	bl.Append(1000, nil, nil, nil)
	_, err := bl.Finish(compression.None)
	require.NoError(t, err)

	bl.Reset()
	require.Equal(t, record.HeaderSize, bl.Size())
	bl.SetLastOffsetDelta(0)
	bl.SetEmptyMaxTimestamp(1500)
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	require.NotNil(t, b)
	require.Zero(t, b.NumRecords())
	require.Zero(t, b.LastOffsetDelta())
	require.EqualValues(t, record.NoTimestamp, b.BaseTimestamp())
	require.EqualValues(t, 1500, b.MaxTimestamp())
	require.NoError(t, b.Validate(0))
}

// TestBuilderDeleteHorizonZero: a delete horizon of 0 (the epoch) is a set
// horizon like any other: the base timestamp stays 0.
func TestBuilderDeleteHorizonZero(t *testing.T) {
	var bl record.Builder
	bl.SetDeleteHorizon(0)
	bl.Append(100, nil, nil, nil)
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	require.Zero(t, b.BaseTimestamp())
	for r, err := range b.Records() {
		require.NoError(t, err)
		require.EqualValues(t, 100, r.Timestamp.UnixMilli())
	}

	bl.Reset()
	bl.SetDeleteHorizon(0)
	bl.SetLastOffsetDelta(1)
	b, err = bl.Finish(compression.None)
	require.NoError(t, err)
	require.True(t, b.HasDeleteHorizon())
	require.Zero(t, b.BaseTimestamp())
}

// TestBuilderGrowOnWarmBuilder: after Grow(n), records that fill the batch
// to n bytes do not move the builder's buffer, even when an earlier batch
// left it smaller.
func TestBuilderGrowOnWarmBuilder(t *testing.T) {
	var bl record.Builder
	bl.Append(1000, nil, nil, nil)
	_, err := bl.Finish(compression.None)
	require.NoError(t, err)

	bl.Reset()
	const n = 64 << 10
	bl.Grow(n)
	value := make([]byte, 100)
	bl.Append(1000, nil, value, nil)
	first, err := bl.Finish(compression.None)
	require.NoError(t, err)
	start := &first[0]
	for bl.Size()+record.RecordSize(0, int64(bl.NumRecords()), nil, value, nil) <= n {
		bl.Append(1000, nil, value, nil)
	}
	last, err := bl.Finish(compression.None)
	require.NoError(t, err)
	require.Greater(t, len(last), n-200)
	require.Same(t, start, &last[0])
}

// TestCorruptErrorMessage: the message names the file when there is one.
func TestCorruptErrorMessage(t *testing.T) {
	e := &record.CorruptError{Position: 5, Reason: "CRC mismatch"}
	require.Equal(t, "runnel/record: corrupt batch at position 5: CRC mismatch", e.Error())
	e.Path = "00000000000000000000.log"
	e.Err = record.ErrTruncated
	require.Equal(t, "runnel/record: corrupt batch in 00000000000000000000.log at position 5: "+
		"CRC mismatch: runnel/record: truncated batch", e.Error())
}

// TestCompactedBatchOffsets: a batch whose records the cleaner thinned out
// keeps its offset range, so its next offset and last sequence follow the
// last offset delta, not the record count (Kafka's
// DefaultRecordBatch.lastSequence).
func TestCompactedBatchOffsets(t *testing.T) {
	var bl record.Builder
	bl.SetProducer(9, 1, 10)
	bl.SetLastOffsetDelta(5)
	bl.AppendAt(0, 1000, []byte("a"), nil, nil)
	bl.AppendAt(3, 1000, []byte("b"), nil, nil)
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	b.SetBaseOffset(100)
	require.EqualValues(t, 2, b.NumRecords())
	require.EqualValues(t, 105, b.LastOffset())
	require.EqualValues(t, 106, b.NextOffset())
	require.EqualValues(t, 15, b.LastSequence())
}

// TestFinishUnknownCodec: Finish refuses a codec it cannot compress with,
// and AppendTo then leaves dst as it was.
func TestFinishUnknownCodec(t *testing.T) {
	var bl record.Builder
	bl.Append(1000, nil, []byte("v"), nil)
	b, err := bl.Finish(compression.Codec(6))
	require.ErrorIs(t, err, compression.ErrUnknownCodec)
	require.Nil(t, b)

	dst := []byte("earlier batches")
	out, err := bl.AppendTo(dst, compression.Codec(6))
	require.ErrorIs(t, err, compression.ErrUnknownCodec)
	require.Equal(t, "earlier batches", string(out))
}

// TestSkipHeaders: after SkipHeaders, records come without headers, which
// are still checked.
func TestSkipHeaders(t *testing.T) {
	var bl record.Builder
	bl.Append(1000, nil, []byte("v"), []record.Header{{Key: "h", Value: []byte("hv")}})
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	it, err := b.Iter(0, 0)
	require.NoError(t, err)
	it.SkipHeaders()
	var r record.Record
	require.True(t, it.Next(&r))
	require.Nil(t, r.Headers)
	require.Equal(t, "v", string(r.Value))
	require.False(t, it.Next(&r))
	require.NoError(t, it.Err())
}

// TestCheckFramingBufferKeepsBuf: for an uncompressed batch,
// CheckFramingBuffer hands back the caller's buffer for the next call.
func TestCheckFramingBufferKeepsBuf(t *testing.T) {
	b := gapBatch(t, 3, 1000, compression.None)
	buf := make([]byte, 0, 4096)
	out, maxTs, err := b.CheckFramingBuffer(0, 0, buf)
	require.NoError(t, err)
	require.EqualValues(t, 1002, maxTs)
	require.Equal(t, cap(buf), cap(out))
	require.Same(t, &buf[:1][0], &out[:1][0])
}

// TestIterSmallStreamBufferCopied: a batch of about 1 KiB of records in a
// zstd frame that does not state its size (as Java's ZstdOutputStream
// writes it) is decoded into a 64 KiB guess; the buffer the records keep
// alive is then within a few KiB of their size, not that guess.
func TestIterSmallStreamBufferCopied(t *testing.T) {
	var bl record.Builder
	for i := range 10 {
		bl.Append(1000, []byte{'k', byte(i)}, make([]byte, 100), nil)
	}
	plain, err := bl.Finish(compression.None)
	require.NoError(t, err)
	var frame bytes.Buffer
	w, err := zstd.NewWriter(&frame, zstd.WithEncoderConcurrency(1))
	require.NoError(t, err)
	_, err = w.Write(plain[record.HeaderSize:])
	require.NoError(t, err)
	require.NoError(t, w.Flush()) // the header goes out before the size is known
	require.NoError(t, w.Close())
	var h zstd.Header
	require.NoError(t, h.Decode(frame.Bytes()))
	require.False(t, h.HasFCS)

	b := append(record.Batch(nil), plain[:record.HeaderSize]...)
	b = append(b, frame.Bytes()...)
	binary.BigEndian.PutUint32(b[posLength:], uint32(len(b)-record.LogOverhead))
	binary.BigEndian.PutUint16(b[posAttributes:], uint16(compression.Zstd))
	b.UpdateCRC()
	require.NoError(t, b.Validate(0))

	it, err := b.Iter(0, 0)
	require.NoError(t, err)
	out := it.Buffer()
	require.Equal(t, len(plain)-record.HeaderSize, len(out))
	require.LessOrEqual(t, cap(out), len(out)+4<<10)
	require.NoError(t, b.ValidateRecords(0, 0))
}

// TestNextStopsAfterError: once Next has failed, it keeps failing with the
// same error, even though well-formed records follow the bad one.
func TestNextStopsAfterError(t *testing.T) {
	var bl record.Builder
	for i := range 3 {
		bl.Append(1000, []byte{'k'}, []byte{byte(i)}, nil)
	}
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	b = append(record.Batch(nil), b...)
	// The first record is [length 8] [attributes] [ts delta] [offset delta 0]
	// [key length 1] 'k' [value length 1] v [0 headers]: make its header
	// count 1, past its end.
	require.EqualValues(t, 16, b[record.HeaderSize]) // zigzag 8
	b[record.HeaderSize+8] = 2
	b.UpdateCRC()

	it, err := b.Iter(0, 0)
	require.NoError(t, err)
	var r record.Record
	require.False(t, it.Next(&r))
	first := it.Err()
	requireCorrupt(t, first, false)
	require.False(t, it.Next(&r))
	require.False(t, it.Next(&r))
	require.Same(t, first, it.Err())
}

// oneRecord returns a copy of a batch of one record, [length 8]
// [attributes] [ts delta] [offset delta] [key length 1] 'k' [value length
// 1] 'v' [0 headers], with the byte at i of the record (its length varint
// at 0) set to v, and its CRC recomputed. Its capacity ends with it, so
// that a decoder that slices past its end panics rather than reading on.
func oneRecord(t *testing.T, i int, v byte) record.Batch {
	t.Helper()
	var bl record.Builder
	bl.Append(1000, []byte{'k'}, []byte{'v'}, nil)
	b, err := bl.Finish(compression.None)
	require.NoError(t, err)
	b = append(record.Batch(nil), b...)
	require.Len(t, b, record.HeaderSize+9)
	b[record.HeaderSize+i] = v
	b.UpdateCRC()
	require.NoError(t, b.Validate(0))
	return b[:len(b):len(b)]
}

// TestLengthOnePastTheEnd: a record length, or a field length, that claims
// exactly one byte more than is left is corrupt for every decoder, never a
// panic nor a read into the bytes after it.
func TestLengthOnePastTheEnd(t *testing.T) {
	for name, b := range map[string]record.Batch{
		"record length 9 of 8": oneRecord(t, 0, 18), // zigzag 9
		"value length 3 of 2":  oneRecord(t, 6, 6),  // zigzag 3: 'v' and the header count left
	} {
		t.Run(name, func(t *testing.T) {
			require.NotPanics(t, func() {
				requireCorrupt(t, b.ValidateRecords(0, 0), false)
				_, err := b.CheckFraming(0)
				requireCorrupt(t, err, false)
			})
		})
	}
}

// TestTimestampTypeString: the names of the timestamp types.
func TestTimestampTypeString(t *testing.T) {
	require.Equal(t, "CreateTime", record.CreateTime.String())
	require.Equal(t, "LogAppendTime", record.LogAppendTime.String())
}

// TestBatchSizeAndLength: Size is the batch's bytes, BatchLength its length
// field, LogOverhead less.
func TestBatchSizeAndLength(t *testing.T) {
	b := gapBatch(t, 3, 1000, compression.None)
	require.Equal(t, len(b), b.Size())
	require.EqualValues(t, len(b)-record.LogOverhead, b.BatchLength())
}

// TestTimestampTypeStringOfUnknownValues: record.TimestampType's String named
// every value but LogAppendTime "CreateTime", so that a bad value (a
// TimestampType(5) made by a caller's conversion) logged as the valid
// default, where every other enum of runnel's (log.TimestampType,
// log.SyncPolicy, compression.Codec, consumer.ResetPolicy, ...) names an
// unknown value with its number.
func TestTimestampTypeStringOfUnknownValues(t *testing.T) {
	require.Equal(t, "CreateTime", record.CreateTime.String())
	require.Equal(t, "LogAppendTime", record.LogAppendTime.String())
	require.Equal(t, "TimestampType(5)", record.TimestampType(5).String())
	require.Equal(t, "TimestampType(-1)", record.TimestampType(-1).String())
}
