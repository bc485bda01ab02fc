package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
)

// streamBatch builds a batch whose records section is records, compressed
// with codec (or, raw, used as the compressed payload as it is), with
// count records and last offset delta count-1, marked LogAppendTime if
// lat.
func streamBatch(t testing.TB, records []byte, count int32, codec compression.Codec, raw, lat bool) Batch {
	t.Helper()
	var b Builder
	b.Append(1_700_000_000_000, nil, nil, nil)
	h, err := b.Finish(compression.None)
	if err != nil {
		t.Fatal(err)
	}
	out := append(Batch(nil), h[:HeaderSize]...)
	payload := records
	if !raw && codec != compression.None {
		if payload, err = codec.AppendEncode(nil, records); err != nil {
			t.Fatal(err)
		}
	}
	out = append(out, payload...)
	binary.BigEndian.PutUint32(out[offLength:], uint32(len(out)-LogOverhead))
	binary.BigEndian.PutUint32(out[offCount:], uint32(count))
	binary.BigEndian.PutUint32(out[offLastDelta:], uint32(max(count-1, 0)))
	attrs := uint16(codec)
	if lat {
		attrs |= uint16(AttrLogAppendTime)
	}
	binary.BigEndian.PutUint16(out[offAttributes:], attrs)
	out.UpdateCRC()
	return out
}

// streamVerdict names an error for comparison: nil, or its kind, the
// CorruptError's reason and position, and whether the codec's error is
// too large or corrupt.
func streamVerdict(err error) string {
	if err == nil {
		return "ok"
	}
	var ce *CorruptError
	if !errors.As(err, &ce) {
		return fmt.Sprintf("not a CorruptError: %v", err)
	}
	return fmt.Sprintf("%q at %d, truncated %v, too large %v, codec corrupt %v", ce.Reason, ce.Position,
		errors.Is(err, ErrTruncated), errors.Is(err, compression.ErrTooLarge), errors.Is(err, compression.ErrCorrupt))
}

// scanned is one call of ScanStream's f.
type scanned struct {
	offset, ts int64
	key        bool
}

// scanBuffered is ScanStream's reference: IterBuffer and Next, stopping
// after the record stop says to.
func scanBuffered(b Batch, pos int64, limit int, stop func(key bool) bool) ([]scanned, error) {
	it, err := b.IterBuffer(pos, limit, nil)
	if err != nil {
		return nil, err
	}
	it.SkipHeaders()
	var calls []scanned
	var r Record
	for it.Next(&r) {
		calls = append(calls, scanned{r.Offset, r.Timestamp.UnixMilli(), r.Key != nil})
		if stop(r.Key != nil) {
			return calls, nil
		}
	}
	return calls, it.Err()
}

// checkStream compares the streaming checks of b with the buffered ones,
// through a buffer of bufSize bytes, at limit.
func checkStream(t *testing.T, b Batch, limit, bufSize int) {
	t.Helper()
	_, wantTs, werr := b.CheckFramingBuffer(3, limit, nil)
	buf, gotTs, gerr := b.CheckFramingStream(3, limit, make([]byte, bufSize))
	if streamVerdict(werr) != streamVerdict(gerr) || wantTs != gotTs {
		t.Fatalf("%v, limit %d, buffer %d: CheckFramingBuffer: %v (max timestamp %d); CheckFramingStream: %v (%d)",
			b.Codec(), limit, bufSize, werr, wantTs, gerr, gotTs)
	}
	if cap(buf) != bufSize && bufSize >= minStreamBuffer {
		t.Fatalf("CheckFramingStream returned a buffer of %d bytes, not the one it was given (%d)", cap(buf), bufSize)
	}
	stops := map[string]func(bool) bool{
		"never":        func(bool) bool { return false },
		"at a keyless": func(k bool) bool { return !k }, // a compacted log's check
		"at a key":     func(k bool) bool { return k },  // hasKey
	}
	for name, stop := range stops {
		want, werr := scanBuffered(b, 3, limit, stop)
		var got []scanned
		_, gerr := b.ScanStream(3, limit, make([]byte, bufSize), func(off int64, ts time.Time, key bool) bool {
			got = append(got, scanned{off, ts.UnixMilli(), key})
			return !stop(key)
		})
		if streamVerdict(werr) != streamVerdict(gerr) {
			t.Fatalf("%v, limit %d, buffer %d, stop %s: IterBuffer: %v; ScanStream: %v", b.Codec(), limit, bufSize, name, werr, gerr)
		}
		// Records that do not decompress are refused before any record
		// is read when decompressed whole; streaming reads some first.
		var ce *CorruptError
		if errors.As(werr, &ce) && ce.Err != nil {
			continue
		}
		if fmt.Sprint(want) != fmt.Sprint(got) {
			t.Fatalf("%v, buffer %d, stop %s: Next read %v, ScanStream %v", b.Codec(), bufSize, name, want, got)
		}
	}
}

// streamSeeds returns records sections (uncompressed) and their counts:
// real ones of every shape, key-less ones, and broken ones.
func streamSeeds(t testing.TB) (recs [][]byte, counts []int32) {
	rng := rand.New(rand.NewPCG(46, 47))
	add := func(r []byte, n int32) { recs, counts = append(recs, r), append(counts, n) }
	var b Builder
	for _, n := range []int{1, 3, 8} {
		b.Reset()
		batch := build(t, &b, sampleRecords(rng, n), compression.None)
		add(bytes.Clone(batch[HeaderSize:]), int32(n))
	}
	b.Reset()
	keyless := build(t, &b, []rec{{ts: 5, key: []byte("k"), value: []byte("v")}, {ts: 9, value: []byte("w")}, {ts: 7, key: []byte{}}}, compression.None)
	add(bytes.Clone(keyless[HeaderSize:]), 3)
	b.Reset()
	big := build(t, &b, []rec{{ts: 1, key: bytes.Repeat([]byte("K"), 300), value: bytes.Repeat([]byte("v"), 500),
		headers: []Header{{Key: "h", Value: []byte("x")}, {Key: "h2"}}}, {ts: 2, value: []byte("s")}}, compression.None)
	add(bytes.Clone(big[HeaderSize:]), 2)
	add(bytes.Clone(big[HeaderSize:len(big)-4]), 2)                    // cut short
	add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1)                 // a varint too long
	add([]byte{0x0a, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1)     // a bad field
	add(append(bytes.Clone(big[HeaderSize:]), 0x02, 0x00), 2)          // a byte after
	add([]byte{0x10, 0x00, 0x00, 0x00, 0x01, 'k', 0x01, 'v', 0x00}, 1) // a record too long by one
	return recs, counts
}

// FuzzStreamMatchesBuffered: the streaming checks (CheckFramingStream,
// ScanStream) give exactly the buffered checks' verdicts (the same error,
// reason and timestamp; the same records to the same stop) for any
// records, compressed with any codec or garbage in their place, cut
// short, at any limit, through any buffer, down to 16 bytes, where
// almost every record is read field by field.
func FuzzStreamMatchesBuffered(f *testing.F) {
	recs, counts := streamSeeds(f)
	for i, r := range recs {
		for codec := range byte(5) {
			f.Add(r, counts[i], codec, uint8(0), uint16(0))
			f.Add(r, counts[i], codec|0x10, uint8(255), uint16(0)) // LogAppendTime, 64 KiB
			f.Add(r, counts[i], codec|0x20, uint8(7), uint16(0))   // cut short
			f.Add(r, counts[i], codec, uint8(3), uint16(len(r)-1)) // over the limit
		}
		f.Add(r, counts[i], byte(compression.Zstd)|0x08, uint8(0), uint16(0)) // garbage
		f.Add(r, counts[i], byte(compression.Gzip)|0x08, uint8(0), uint16(0))
	}
	f.Fuzz(func(t *testing.T, records []byte, count int32, flags byte, bufSel uint8, limitSel uint16) {
		codec := compression.Codec(flags % 5)
		b := streamBatch(t, records, count, codec, flags&0x08 != 0, flags&0x10 != 0)
		if flags&0x20 != 0 && len(b) > HeaderSize+3 {
			b = b[:len(b)-3]
			binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-LogOverhead))
			b.UpdateCRC()
		}
		bufSize := minStreamBuffer + int(bufSel)
		if bufSel == 255 {
			bufSize = StreamBufferSize
		}
		checkStream(t, b, int(limitSel), bufSize)
	})
}

// Records larger than the buffer, of every codec: the streaming checks
// agree with the buffered ones for good records of every size around the
// buffer's, and for each record cut at every byte of its first 40 and
// last 40.
func TestStreamLargeRecords(t *testing.T) {
	var b Builder
	for _, codec := range codecs {
		for _, size := range []int{100, 1000, 5000} {
			b.Reset()
			batch := build(t, &b, []rec{
				{ts: 10, key: bytes.Repeat([]byte("k"), size), value: bytes.Repeat([]byte("v"), size),
					headers: []Header{{Key: "h", Value: bytes.Repeat([]byte("x"), size)}}},
				{ts: 5, value: []byte("v")},
				{ts: 20, key: []byte("k2"), value: bytes.Repeat([]byte("w"), 3*size)},
			}, compression.None)
			records := batch[HeaderSize:]
			for _, bufSize := range []int{16, 64, 1024, StreamBufferSize} {
				checkStream(t, streamBatch(t, records, 3, codec, false, false), 0, bufSize)
				checkStream(t, streamBatch(t, records, 3, codec, false, true), 0, bufSize)
				checkStream(t, streamBatch(t, records, 2, codec, false, false), 0, bufSize)
				checkStream(t, streamBatch(t, records, 4, codec, false, false), 0, bufSize)
			}
			for cut := range len(records) {
				if cut > 40 && cut < len(records)-40 {
					continue
				}
				checkStream(t, streamBatch(t, records[:cut], 3, codec, false, false), 0, 64)
			}
		}
	}
}

// encodedRecord is a record of attributes 0, timestamp delta ts, offset
// delta off, a null key, value and headers (key, value pairs; a nil key
// is null), its length
// prefix written as a varint of at least lenBytes bytes (up to 5: longer
// than needed is a form Kafka's reader takes) and counting extra bytes
// more than its fields (zeros after them), or fewer if extra is negative.
// tsLong writes the timestamp delta in 10 bytes.
func encodedRecord(ts, off int64, tsLong bool, value []byte, headers [][2][]byte, lenBytes, extra int) []byte {
	body := []byte{0}
	if tsLong {
		u := uint64(ts<<1) ^ uint64(ts>>63)
		for range 9 {
			body = append(body, byte(u)|0x80)
			u >>= 7
		}
		body = append(body, byte(u))
	} else {
		body = binary.AppendVarint(body, ts)
	}
	body = binary.AppendVarint(body, off)
	body = binary.AppendVarint(body, -1) // null key
	body = binary.AppendVarint(body, int64(len(value)))
	body = append(body, value...)
	body = binary.AppendVarint(body, int64(len(headers)))
	for _, h := range headers {
		if h[0] == nil {
			body = binary.AppendVarint(body, -1)
		} else {
			body = binary.AppendVarint(body, int64(len(h[0])))
		}
		body = append(body, h[0]...)
		body = binary.AppendVarint(body, int64(len(h[1])))
		body = append(body, h[1]...)
	}
	length := len(body) + extra
	body = append(body, make([]byte, max(extra, 0))...)
	u := uint64(length) << 1 // zigzag of a positive length
	var out []byte
	for i := 1; i < lenBytes || u >= 0x80; i++ {
		out = append(out, byte(u)|0x80)
		u >>= 7
	}
	return append(append(out, byte(u)), body...)
}

// xerialChunks frames records as xerial snappy chunks, cut at the given
// offsets, as the payload of a Snappy batch (which streams chunk by
// chunk).
func xerialChunks(t *testing.T, records []byte, cuts ...int) []byte {
	out := []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1}
	prev := 0
	for _, c := range append(cuts, len(records)) {
		block, err := compression.Snappy.AppendEncode(nil, records[prev:c])
		if err != nil {
			t.Fatal(err)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		prev = c
	}
	return out
}

// TestStreamVarintsAcrossReads: a record length in 5 bytes and a timestamp
// delta in 10, each the longest form its field takes, with the stream's
// pieces (xerial chunks) ending at every byte of them: the streaming
// checks wait for the whole varint, as the buffered ones see it, through
// buffers from 16 bytes.
func TestStreamVarintsAcrossReads(t *testing.T) {
	var records []byte
	records = append(records, encodedRecord(math.MinInt64/3, 0, true, bytes.Repeat([]byte("v"), 100), nil, 5, 0)...)
	records = append(records, encodedRecord(-7, 1, true, []byte("small"), nil, 5, 0)...)
	records = append(records, encodedRecord(0, 2, false, nil, nil, 5, 0)...)
	for cut := 1; cut < len(records); cut++ {
		if cut > 40 && cut < 120 {
			continue
		}
		payload := xerialChunks(t, records, cut)
		for _, bufSize := range []int{16, 17, 24, 40} {
			checkStream(t, streamBatch(t, payload, 3, compression.Snappy, true, false), 0, bufSize)
		}
	}
}

// TestStreamLastRecordCutInItsLastField: the last record, larger than the
// buffer, cut within its last field (a header's value): the streaming
// checks refuse its length, as the buffered ones.
func TestStreamLastRecordCutInItsLastField(t *testing.T) {
	rec := encodedRecord(3, 0, false, bytes.Repeat([]byte("v"), 40), [][2][]byte{{[]byte("h"), bytes.Repeat([]byte("x"), 100)}}, 1, 0)
	for cut := len(rec) - 100; cut < len(rec); cut++ {
		for _, bufSize := range []int{16, 64} {
			checkStream(t, streamBatch(t, rec[:cut], 1, compression.Gzip, false, false), 0, bufSize)
		}
	}
}

// TestStreamLargeRecordFaults: faults of a record larger than the buffer,
// read field by field: a varint that runs past the record's length (the
// header count's second byte), an offset delta past the last offset
// delta, bytes after the fields within the record's length, a record
// length of 0, a null header key, offset deltas out of order (also of
// small records), timestamps before -1 (the largest is the first's, not
// -1's); the streaming checks give the buffered ones' verdicts.
func TestStreamLargeRecordFaults(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 100)
	// 64 headers: a count of two bytes, of which the record holds one.
	var hs [][2][]byte
	for range 64 {
		hs = append(hs, [2][]byte{{'h'}, nil})
	}
	countCut := encodedRecord(0, 0, false, value, hs, 1, -(1 + 64*3)) // ends after the count's first byte
	for name, tc := range map[string]struct {
		records []byte
		count   int32
	}{
		"varint past the record":  {countCut, 1},
		"offset past the last":    {encodedRecord(0, 1, false, value, nil, 1, 0), 1},
		"bytes after the fields":  {encodedRecord(0, 0, false, value, nil, 1, 1), 1},
		"two bytes after":         {encodedRecord(0, 0, false, value, nil, 1, 2), 1},
		"zero length":             {[]byte{0x00, 0x00}, 1},
		"zero length after one":   {append(encodedRecord(0, 0, false, value, nil, 1, 0), 0x00, 0x00), 2},
		"large record, zero next": {append(encodedRecord(0, 0, false, value, nil, 1, 0), 0x00), 2},
		"null header key":         {encodedRecord(0, 0, false, value, [][2][]byte{{nil, []byte("x")}}, 1, 0), 1},
		"offsets out of order":    {append(encodedRecord(0, 0, false, value, nil, 1, 0), encodedRecord(0, 0, false, value, nil, 1, 0)...), 2},
		"small, out of order":     {append(encodedRecord(0, 1, false, nil, nil, 1, 0), encodedRecord(0, 1, false, nil, nil, 1, 0)...), 2},
		// streamBatch's base timestamp is 1,700,000,000,000: -5 and -3.
		"timestamps before -1": {append(encodedRecord(-1_700_000_000_005, 0, false, value, nil, 1, 0), encodedRecord(-1_700_000_000_003, 1, false, nil, nil, 1, 0)...), 2},
	} {
		t.Run(name, func(t *testing.T) {
			for _, bufSize := range []int{16, 64, StreamBufferSize} {
				checkStream(t, streamBatch(t, tc.records, tc.count, compression.Gzip, false, false), 0, bufSize)
			}
		})
	}
}

// TestStreamCountAndShortBatch: a negative record count and a batch
// shorter than its header are refused by the streaming checks as by the
// buffered ones, without a panic.
func TestStreamCountAndShortBatch(t *testing.T) {
	rec := encodedRecord(0, 0, false, []byte("v"), nil, 1, 0)
	checkStream(t, streamBatch(t, rec, -1, compression.Gzip, false, false), 0, 64)
	checkStream(t, streamBatch(t, rec, math.MinInt32, compression.Gzip, false, false), 0, 64)
	short := streamBatch(t, rec, 1, compression.Gzip, false, false)[:HeaderSize-1]
	_, ts, err := short.CheckFramingStream(5, 0, nil)
	if !errors.Is(err, ErrTruncated) || ts != NoTimestamp {
		t.Fatalf("a batch of %d bytes: %v, max timestamp %d; want ErrTruncated", len(short), err, ts)
	}
}

// TestStreamingChecksPooled: the streaming checks of a gzip batch put
// the compression.Reader and its decoder back: checking it again through
// the same buffer allocates nearly nothing (the least of three tries, the
// collector off, as a pool can lose an item to it).
func TestStreamingChecksPooled(t *testing.T) {
	if testkit.RaceEnabled {
		t.Skip("the race detector drops pooled items at random")
	}
	rec := encodedRecord(0, 0, false, bytes.Repeat([]byte("v"), 100<<10), nil, 3, 0)
	b := streamBatch(t, rec, 1, compression.Gzip, false, false)
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	buf := make([]byte, 4<<10)
	checks := map[string]func(){
		"CheckFramingStream": func() {
			var err error
			if buf, _, err = b.CheckFramingStream(0, 0, buf); err != nil {
				t.Fatal(err)
			}
		},
		"ScanStream": func() {
			var err error
			if buf, err = b.ScanStream(0, 0, buf, func(int64, time.Time, bool) bool { return true }); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, check := range checks {
		check()
		allocs := math.Inf(1)
		for range 3 {
			allocs = min(allocs, testing.AllocsPerRun(10, check))
		}
		if allocs > 2 {
			t.Errorf("%s: %.1f allocations a check, more than 2: a decoder not put back", name, allocs)
		}
	}
}
