package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime/debug"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
)

// mut47Record is a record of attributes 0, timestamp delta ts, offset
// delta off, a null key, value and headers (key, value pairs; a nil key
// is null), its length
// prefix written as a varint of at least lenBytes bytes (up to 5: longer
// than needed is a form Kafka's reader takes) and counting extra bytes
// more than its fields (zeros after them), or fewer if extra is negative.
// tsLong writes the timestamp delta in 10 bytes.
func mut47Record(ts, off int64, tsLong bool, value []byte, headers [][2][]byte, lenBytes, extra int) []byte {
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

// mut47Xerial frames records as xerial snappy chunks, cut at the given
// offsets, as the payload of a Snappy batch (which streams chunk by
// chunk).
func mut47Xerial(t *testing.T, records []byte, cuts ...int) []byte {
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

// TestMut47VarintsAcrossReads: a record length in 5 bytes and a timestamp
// delta in 10, each the longest form its field takes, with the stream's
// pieces (xerial chunks) ending at every byte of them: the streaming
// checks wait for the whole varint, as the buffered ones see it, through
// buffers from 16 bytes. (mut47: R11, R17, R32.)
func TestMut47VarintsAcrossReads(t *testing.T) {
	var records []byte
	records = append(records, mut47Record(math.MinInt64/3, 0, true, bytes.Repeat([]byte("v"), 100), nil, 5, 0)...)
	records = append(records, mut47Record(-7, 1, true, []byte("small"), nil, 5, 0)...)
	records = append(records, mut47Record(0, 2, false, nil, nil, 5, 0)...)
	for cut := 1; cut < len(records); cut++ {
		if cut > 40 && cut < 120 {
			continue
		}
		payload := mut47Xerial(t, records, cut)
		for _, bufSize := range []int{16, 17, 24, 40} {
			checkStream(t, streamBatch(t, payload, 3, compression.Snappy, true, false), 0, bufSize)
		}
	}
}

// TestMut47LastRecordCutInItsLastField: the last record, larger than the
// buffer, cut within its last field (a header's value): the streaming
// checks refuse its length, as the buffered ones. (mut47: R16.)
func TestMut47LastRecordCutInItsLastField(t *testing.T) {
	rec := mut47Record(3, 0, false, bytes.Repeat([]byte("v"), 40), [][2][]byte{{[]byte("h"), bytes.Repeat([]byte("x"), 100)}}, 1, 0)
	for cut := len(rec) - 100; cut < len(rec); cut++ {
		for _, bufSize := range []int{16, 64} {
			checkStream(t, streamBatch(t, rec[:cut], 1, compression.Gzip, false, false), 0, bufSize)
		}
	}
}

// TestMut47LargeRecordFaults: faults of a record larger than the buffer,
// read field by field: a varint that runs past the record's length (the
// header count's second byte), an offset delta past the last offset
// delta, bytes after the fields within the record's length, a record
// length of 0, a null header key, offset deltas out of order (also of
// small records), timestamps before -1 (the largest is the first's, not
// -1's); the streaming checks give the buffered ones' verdicts. (mut47:
// R12, R31, R37, R38, R45, R49, R65, R67.)
func TestMut47LargeRecordFaults(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 100)
	// 64 headers: a count of two bytes, of which the record holds one.
	var hs [][2][]byte
	for range 64 {
		hs = append(hs, [2][]byte{{'h'}, nil})
	}
	countCut := mut47Record(0, 0, false, value, hs, 1, -(1 + 64*3)) // ends after the count's first byte
	for name, tc := range map[string]struct {
		records []byte
		count   int32
	}{
		"varint past the record":  {countCut, 1},
		"offset past the last":    {mut47Record(0, 1, false, value, nil, 1, 0), 1},
		"bytes after the fields":  {mut47Record(0, 0, false, value, nil, 1, 1), 1},
		"two bytes after":         {mut47Record(0, 0, false, value, nil, 1, 2), 1},
		"zero length":             {[]byte{0x00, 0x00}, 1},
		"zero length after one":   {append(mut47Record(0, 0, false, value, nil, 1, 0), 0x00, 0x00), 2},
		"large record, zero next": {append(mut47Record(0, 0, false, value, nil, 1, 0), 0x00), 2},
		"null header key":         {mut47Record(0, 0, false, value, [][2][]byte{{nil, []byte("x")}}, 1, 0), 1},
		"offsets out of order":    {append(mut47Record(0, 0, false, value, nil, 1, 0), mut47Record(0, 0, false, value, nil, 1, 0)...), 2},
		"small, out of order":     {append(mut47Record(0, 1, false, nil, nil, 1, 0), mut47Record(0, 1, false, nil, nil, 1, 0)...), 2},
		// streamBatch's base timestamp is 1,700,000,000,000: -5 and -3.
		"timestamps before -1": {append(mut47Record(-1_700_000_000_005, 0, false, value, nil, 1, 0), mut47Record(-1_700_000_000_003, 1, false, nil, nil, 1, 0)...), 2},
	} {
		t.Run(name, func(t *testing.T) {
			for _, bufSize := range []int{16, 64, StreamBufferSize} {
				checkStream(t, streamBatch(t, tc.records, tc.count, compression.Gzip, false, false), 0, bufSize)
			}
		})
	}
}

// TestMut47CountAndShortBatch: a negative record count and a batch
// shorter than its header are refused by the streaming checks as by the
// buffered ones, without a panic. (mut47: R24, R29.)
func TestMut47CountAndShortBatch(t *testing.T) {
	rec := mut47Record(0, 0, false, []byte("v"), nil, 1, 0)
	checkStream(t, streamBatch(t, rec, -1, compression.Gzip, false, false), 0, 64)
	checkStream(t, streamBatch(t, rec, math.MinInt32, compression.Gzip, false, false), 0, 64)
	short := streamBatch(t, rec, 1, compression.Gzip, false, false)[:HeaderSize-1]
	_, ts, err := short.CheckFramingStream(5, 0, nil)
	if !errors.Is(err, ErrTruncated) || ts != NoTimestamp {
		t.Fatalf("a batch of %d bytes: %v, max timestamp %d; want ErrTruncated", len(short), err, ts)
	}
}

// TestMut47StreamingChecksPooled: the streaming checks of a gzip batch put
// the compression.Reader and its decoder back: checking it again through
// the same buffer allocates nearly nothing (the least of three tries, the
// collector off, as a pool can lose an item to it). (mut47: R20.)
func TestMut47StreamingChecksPooled(t *testing.T) {
	if testkit.RaceEnabled {
		t.Skip("the race detector drops pooled items at random")
	}
	rec := mut47Record(0, 0, false, bytes.Repeat([]byte("v"), 100<<10), nil, 3, 0)
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
