package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
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
