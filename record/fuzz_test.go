package record

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/runnel/runnel/compression"
)

func seedBatches(f *testing.F) {
	for _, data := range seedBatchList(f) {
		f.Add(data)
	}
}

// seedBatchList is seedBatches' seeds: batches of every codec, as
// brokers and the cleaner keep them, Apache Kafka's segments and their
// batches, and nothing.
func seedBatchList(t testing.TB) [][]byte {
	var seeds [][]byte
	rng := rand.New(rand.NewPCG(21, 22))
	var b Builder
	for _, codec := range codecs {
		b.Reset()
		batch := build(t, &b, sampleRecords(rng, 5), codec)
		seeds = append(seeds, []byte(batch))
	}
	// Batches as a broker keeps them: an idempotent and transactional
	// producer's, LogAppendTime, a base offset and leader epoch stamped;
	// and as the cleaner writes them: a delete horizon, offsets with gaps,
	// no records left.
	recs := sampleRecords(rng, 4)
	add := func(codec compression.Codec, setup func(*Builder), edit func(Batch), recs ...rec) {
		b.Reset()
		if setup != nil {
			setup(&b)
		}
		batch := build(t, &b, recs, codec)
		if edit != nil {
			edit(batch)
		}
		seeds = append(seeds, []byte(batch))
	}
	add(compression.Zstd, func(b *Builder) { b.SetProducer(7, 2, 40); b.SetTransactional(true) }, nil, recs...)
	add(compression.None, nil, func(b Batch) { b.SetLogAppendTime(1_700_000_000_123) }, recs...)
	add(compression.LZ4, nil, func(b Batch) { b.SetBaseOffset(1 << 40); b.SetLeaderEpoch(3) }, recs...)
	add(compression.None, func(b *Builder) { b.SetDeleteHorizon(1_700_000_086_400) }, nil, recs[:2]...)
	for _, codec := range []compression.Codec{compression.None, compression.Gzip} {
		b.Reset()
		for i, r := range recs {
			b.AppendAt(int64(3*i), r.ts, r.key, r.value, r.headers)
		}
		b.SetLastOffsetDelta(20)
		seeds = append(seeds, []byte(mustFinish(t, &b, codec)))
	}
	b.Reset()
	b.SetLastOffsetDelta(9)
	b.SetEmptyMaxTimestamp(1_700_000_000_000)
	seeds = append(seeds, []byte(mustFinish(t, &b, compression.None)))
	// Segments written by Apache Kafka, whole and batch by batch.
	for _, dir := range kafkaSegments {
		data := kafkaSegment(t, dir)
		seeds = append(seeds, data)
		for b, err := range Batches(data) {
			if err == nil {
				seeds = append(seeds, []byte(b))
			}
		}
	}
	seeds = append(seeds, []byte{}, make([]byte, HeaderSize))
	return seeds
}

// mustFinish is b's batch of codec, copied.
func mustFinish(t testing.TB, b *Builder, codec compression.Codec) Batch {
	batch, err := b.Finish(codec)
	if err != nil || batch == nil {
		t.Fatalf("Finish: %d bytes, %v", len(batch), err)
	}
	return append(Batch(nil), batch...)
}

// FuzzBatch feeds arbitrary bytes through Parse, Validate and record
// decoding: none may panic, what decodes must be consistent, and
// CheckFramingBuffer (a broker's check) must take exactly what decodes.
func FuzzBatch(f *testing.F) {
	seedBatches(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBatches(t, data)
		b, err := Parse(data, 0)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse: %v, not ErrCorrupt", err)
			}
			return
		}
		if len(b) > len(data) || int(b.BatchLength())+LogOverhead != len(b) {
			t.Fatalf("parse returned %d bytes of %d", len(b), len(data))
		}
		verr := b.Validate(0)
		if verr != nil && !errors.Is(verr, ErrCorrupt) {
			t.Fatalf("Validate: %v, not ErrCorrupt", verr)
		}
		it, err := b.Iter(0, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Iter: %v, not ErrCorrupt", err)
			}
			return
		}
		var r Record
		var recs []Record
		n := 0
		maxTs := int64(NoTimestamp)
		for it.Next(&r) {
			recs = append(recs, r)
			if r.Offset < b.BaseOffset() || r.Offset > b.LastOffset() {
				t.Fatalf("offset %d outside [%d, %d]", r.Offset, b.BaseOffset(), b.LastOffset())
			}
			ts := r.Timestamp.UnixMilli()
			if n == 0 || ts > maxTs {
				maxTs = ts
			}
			n++
		}
		if it.Err() == nil && n != int(b.NumRecords()) {
			t.Fatalf("decoded %d records, count says %d", n, b.NumRecords())
		}
		if it.Err() != nil && !errors.Is(it.Err(), ErrCorrupt) {
			t.Fatalf("Next: %v, not ErrCorrupt", it.Err())
		}
		if it.Err() == nil && verr == nil && n > 0 {
			checkRebuilt(t, b, recs)
		}
		// Framing is implied by a full decode, compressed or not, and
		// finds the records' largest timestamp.
		if _, err := b.CheckFraming(0); it.Err() == nil && err != nil {
			t.Fatalf("records decode but framing fails: %v", err)
		}
		_, got, err := b.CheckFramingBuffer(0, 1<<20, nil)
		if it.Err() == nil && err != nil {
			t.Fatalf("records decode but framing after decompression fails: %v", err)
		}
		// And the other way: what the broker's check takes, consumers
		// can read.
		if it.Err() != nil && err == nil {
			t.Fatalf("the broker's check takes records that do not decode: %v", it.Err())
		}
		if it.Err() == nil && b.Attributes()&AttrLogAppendTime == 0 && got != maxTs {
			t.Fatalf("framing found the largest timestamp %d, the records' is %d", got, maxTs)
		}
	})
}

// FuzzRecords builds a batch from arbitrary record bytes under a valid
// header (so the CRC passes), then decodes the records; CheckFraming must
// take exactly what decodes, both refuse with a *CorruptError (ErrCorrupt),
// and what decodes has offsets within the batch's and the largest
// timestamp CheckFraming finds.
func FuzzRecords(f *testing.F) {
	rng := rand.New(rand.NewPCG(23, 24))
	var b Builder
	for range 4 {
		b.Reset()
		batch := build(f, &b, sampleRecords(rng, 3), compression.None)
		f.Add([]byte(batch[HeaderSize:]), int32(3))
	}
	// The records of the uncompressed batches Apache Kafka wrote.
	for _, dir := range kafkaSegments {
		for b, err := range Batches(kafkaSegment(f, dir)) {
			if err == nil && b.Codec() == compression.None {
				f.Add([]byte(b[HeaderSize:]), b.NumRecords())
			}
		}
	}
	// Records that only checkRecord reads among those quickRecords
	// takes, in the orders that make checkFraming stop trying it.
	for _, batch := range mixedBatches(f) {
		f.Add([]byte(batch[HeaderSize:]), batch.NumRecords())
	}
	f.Add([]byte{0x02, 0x00}, int32(1))
	f.Fuzz(func(t *testing.T, records []byte, count int32) {
		var bb Builder
		bb.Append(0, nil, nil, nil)
		batch, _ := bb.Finish(compression.None)
		full := append(append(Batch(nil), batch[:HeaderSize]...), records...)
		putHeader(full, count)
		verr := full.ValidateRecords(0, 1<<20)
		framedTs, ferr := full.CheckFraming(0)
		if (ferr == nil) != (verr == nil) {
			t.Fatalf("the broker's check says %v, decoding says %v", ferr, verr)
		}
		var ce *CorruptError
		for _, err := range []error{verr, ferr} {
			if err != nil && (!errors.Is(err, ErrCorrupt) || !errors.As(err, &ce)) {
				t.Fatalf("%v: not a *CorruptError matching ErrCorrupt", err)
			}
		}
		if verr == nil {
			n := 0
			maxTs := int64(NoTimestamp)
			for r, err := range full.Records() {
				if err != nil {
					t.Fatalf("validated batch fails to decode: %v", err)
				}
				if r.Offset < full.BaseOffset() || r.Offset > full.LastOffset() {
					t.Fatalf("offset %d outside [%d, %d]", r.Offset, full.BaseOffset(), full.LastOffset())
				}
				if ts := r.Timestamp.UnixMilli(); n == 0 || ts > maxTs {
					maxTs = ts
				}
				n++
			}
			if n != int(count) {
				t.Fatalf("decoded %d records of %d", n, count)
			}
			if framedTs != maxTs {
				t.Fatalf("the broker's check found the largest timestamp %d, the records' is %d", framedTs, maxTs)
			}
		}
	})
}

// checkBatches: Batches yields whole batches laid end to end from the
// start of data, and at most one error, last, matching ErrCorrupt (and
// ErrTruncated when data ends inside a batch), where Parse fails.
func checkBatches(t *testing.T, data []byte) {
	pos := 0
	failed := false
	for b, err := range Batches(data) {
		if failed {
			t.Fatal("Batches yielded after an error")
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Batches: %v, not ErrCorrupt", err)
			}
			if _, perr := Parse(data[pos:], int64(pos)); perr == nil {
				t.Fatalf("Batches failed at %d where Parse does not", pos)
			}
			failed = true
			continue
		}
		if !bytes.Equal(b, data[pos:pos+len(b)]) || len(b) != int(BatchSize(b)) {
			t.Fatalf("Batches yielded %d bytes at %d that are not the batch there", len(b), pos)
		}
		pos += len(b)
	}
	if !failed && pos != len(data) {
		t.Fatalf("Batches stopped at %d of %d bytes without an error", pos, len(data))
	}
}

// checkRebuilt: a valid batch whose records decode is encoded again, by
// the Builder, from what was decoded (records, producer, codec), and
// decodes to the same records: what a consumer reads of it is what a
// producer can write.
func checkRebuilt(t *testing.T, b Batch, recs []Record) {
	var bb Builder
	bb.Reset()
	if b.ProducerID() != NoProducerID || b.ProducerEpoch() != NoProducerEpoch || b.BaseSequence() != NoSequence {
		bb.SetProducer(b.ProducerID(), b.ProducerEpoch(), b.BaseSequence())
	}
	for _, r := range recs {
		bb.AppendAt(r.Offset-b.BaseOffset(), r.Timestamp.UnixMilli(), r.Key, r.Value, r.Headers)
	}
	bb.SetLastOffsetDelta(b.LastOffsetDelta())
	again, err := bb.Finish(b.Codec())
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	again = Batch(bytes.Clone(again))
	again.SetBaseOffset(b.BaseOffset())
	again.UpdateCRC()
	i := 0
	for r, err := range again.Records() {
		if err != nil {
			t.Fatalf("rebuilt batch: %v", err)
		}
		w := recs[i]
		if r.Offset != w.Offset || !bytes.Equal(r.Key, w.Key) || (r.Key == nil) != (w.Key == nil) ||
			!bytes.Equal(r.Value, w.Value) || (r.Value == nil) != (w.Value == nil) || len(r.Headers) != len(w.Headers) ||
			r.Sequence != w.Sequence || r.ProducerID != w.ProducerID {
			t.Fatalf("record %d rebuilt as %+v, decoded as %+v", i, r, w)
		}
		if b.TimestampType() == CreateTime && r.Timestamp.UnixMilli() != w.Timestamp.UnixMilli() {
			t.Fatalf("record %d: timestamp %d rebuilt as %d", i, w.Timestamp.UnixMilli(), r.Timestamp.UnixMilli())
		}
		for j := range w.Headers {
			if r.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(r.Headers[j].Value, w.Headers[j].Value) || (r.Headers[j].Value == nil) != (w.Headers[j].Value == nil) {
				t.Fatalf("record %d header %d rebuilt as %+v, decoded as %+v", i, j, r.Headers[j], w.Headers[j])
			}
		}
		i++
	}
	if i != len(recs) {
		t.Fatalf("rebuilt %d records of %d", i, len(recs))
	}
}

func putHeader(b Batch, count int32) {
	be := func(off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	}
	be(offLength, uint32(len(b)-LogOverhead))
	be(offCount, uint32(count))
	delta := count - 1
	if delta < 0 {
		delta = 0
	}
	be(offLastDelta, uint32(delta))
	b.UpdateCRC()
}

// FuzzDecodeMatchesReference: RecordIter.decode reads any record body
// as referenceDecode (the decoder it replaced, record_test.go) reads
// it: the same error, or the same record down to the capacity of its
// Headers and the capacity and the bytes of Key, Value and header values,
// and the same previous offset delta kept (not compared after an error,
// since Next then reads no more); the record untouched on an error and
// the body never written. The body comes with spare capacity or none
// (Next hands decode a body that reaches on into the next record), and
// the batch's fields (the previous and last offset deltas, the base
// sequence, SkipHeaders and the timestamp type) vary with the input.
// Seeded with every record of seedBatches' batches.
func FuzzDecodeMatchesReference(f *testing.F) {
	for _, data := range seedBatchList(f) {
		for b, err := range Batches(data) {
			if err != nil {
				break
			}
			it, err := b.Iter(0, 1<<20)
			if err != nil {
				continue
			}
			for rest := it.data; len(rest) > 0; {
				l, n := varint(rest)
				if n <= 0 || l <= 0 || l > int64(len(rest)-n) {
					break
				}
				f.Add(bytes.Clone(rest[n:n+int(l)]), int64(-1), int64(b.LastOffsetDelta()), b.BaseSequence(), uint8(0))
				rest = rest[n+int(l):]
			}
		}
	}
	// Long varints: a timestamp delta of 10 bytes under LogAppendTime; an
	// offset delta of 5 bytes with its 5th byte's top bits set, an empty
	// key and a header value of 5 bytes whose length wraps to MinInt32
	// (null), under SkipHeaders.
	f.Add([]byte{0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0x02, 0x01, 0x01, 0x00}, int64(-1), int64(5), int32(-1), uint8(2))
	f.Add([]byte{0, 0x00, 0x80, 0x80, 0x80, 0x80, 0x0f, 0x00, 0x01, 0x02, 0x02, 'h', 0xff, 0xff, 0xff, 0xff, 0x0f}, int64(-1), int64(math.MaxInt32), int32(0), uint8(1))
	f.Fuzz(func(t *testing.T, body []byte, prevOff, lastDelta int64, baseSeq int32, flags uint8) {
		if len(body) == 0 {
			return // Next never hands decode an empty body
		}
		if flags&4 != 0 {
			// Spare capacity past the body, as the records after it.
			body = append(body[:len(body):len(body)], 0x02, 0x04, 0x06)[:len(body)]
		} else {
			body = body[:len(body):len(body)]
		}
		before := bytes.Clone(body[:cap(body)])
		it := RecordIter{pos: 3, prevOff: prevOff, noHeader: flags&1 != 0, hdr: batchFields{
			baseOffset: 1 << 33, ts: 1_700_000_000_000, producerID: 42, lastDelta: lastDelta, baseSeq: baseSeq,
			leaderEpoch: 4, producerEpoch: 2, tsType: TimestampType(flags >> 1 & 1),
		}}
		ref := it
		garbage := Record{
			Topic: "t", Offset: 99, Timestamp: time.Unix(1, 2), Key: []byte("k"), Value: []byte("v"),
			Headers: []Header{{Key: "h"}}, ProducerID: 5, Partition: 6, LeaderEpoch: 7, Sequence: 8,
			ProducerEpoch: 9, TimestampType: LogAppendTime,
		}
		want, got := garbage, garbage
		wantErr := referenceDecode(&ref, body, &want)
		err := it.decode(body, &got)
		if !bytes.Equal(before, body[:cap(body)]) {
			t.Fatalf("decode wrote into the body % x", before)
		}
		if wantErr != nil {
			if err == nil || err.Error() != wantErr.Error() {
				t.Fatalf("decode: %v; the reference: %v", err, wantErr)
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Position != 3 {
				t.Fatalf("decode: %v, not a *CorruptError at 3", err)
			}
			if !reflect.DeepEqual(got, garbage) {
				t.Fatalf("decode failed but wrote %+v", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("decode: %v; the reference decodes %+v", err, want)
		}
		if !reflect.DeepEqual(got, want) || cap(got.Headers) != cap(want.Headers) {
			t.Fatalf("decoded %+v; the reference %+v", got, want)
		}
		if ref.prevOff != it.prevOff {
			t.Fatalf("prevOff %d, the reference's %d", it.prevOff, ref.prevOff)
		}
		same := func(what string, g, w []byte) {
			if cap(g) != cap(w) || (cap(w) > 0 && unsafe.SliceData(g) != unsafe.SliceData(w)) {
				t.Fatalf("%s: cap %d at %p; the reference's cap %d at %p", what, cap(g), g, cap(w), w)
			}
		}
		same("key", got.Key, want.Key)
		same("value", got.Value, want.Value)
		for j := range want.Headers {
			same(fmt.Sprintf("header %d", j), got.Headers[j].Value, want.Headers[j].Value)
		}
	})
}
