package record

import (
	"bytes"
	"testing"

	"github.com/runnel/runnel/compression"
)

// recordBodies returns the bodies of b's records (each after its length
// and attributes byte), as checkFraming hands them to checkRecord.
func recordBodies(t testing.TB, b Batch) [][]byte {
	t.Helper()
	var out [][]byte
	data := []byte(b[HeaderSize:])
	for len(data) > 0 {
		l, n := varint(data)
		if n <= 0 || l <= 0 || l > int64(len(data)-n) {
			t.Fatalf("bad record length at %d", len(b)-len(data))
		}
		out = append(out, data[n+1:n+int(l)])
		data = data[n+int(l):]
	}
	return out
}

// TestQuickRecordTakesTheCommonRecord: records without headers whose
// timestamp delta and key and value lengths fit in two bytes each (null,
// empty and 100-byte keys and values, timestamp deltas past 63 and
// negative), whatever their offset delta (past 8,191 too), are read by
// quickRecord, with checkRecord's deltas; a record with a header, with a
// key or value of 8 KiB (a length of three bytes), or with a timestamp
// delta of 100 s (three bytes), is left to checkRecord.
func TestQuickRecordTakesTheCommonRecord(t *testing.T) {
	var b Builder
	value := bytes.Repeat([]byte{'v'}, 100)
	const base = int64(1_700_000_000_000)
	for i := range 300 {
		var key []byte
		switch i % 3 {
		case 1:
			key = []byte{}
		case 2:
			key = value
		}
		ts := base + int64(i%7)*20 - 60 // deltas of -60 to 60 ms
		if i%2 == 1 {
			b.Append(ts, key, value, nil)
		} else {
			b.Append(ts, key, nil, nil)
		}
	}
	b.AppendAt(300, base-8000, value, value, nil)
	b.AppendAt(9000, base+8000, nil, value, nil)
	batch, err := b.Finish(compression.None)
	if err != nil {
		t.Fatal(err)
	}
	prev := int64(-1)
	for i, rec := range recordBodies(t, batch) {
		ts, off, ok := quickRecord(rec, prev, int64(batch.LastOffsetDelta()))
		if !ok {
			t.Fatalf("record %d: quickRecord declined it", i)
		}
		wantTs, wantOff, reason := checkRecord(rec, prev, int64(batch.LastOffsetDelta()))
		if reason != "" || ts != wantTs || off != wantOff {
			t.Fatalf("record %d: quickRecord read (%d, %d), checkRecord (%d, %d, %q)", i, ts, off, wantTs, wantOff, reason)
		}
		prev = off
	}

	b.Reset()
	b.Append(base, nil, value, []Header{{Key: "h", Value: []byte("v")}})
	b.Append(base, bytes.Repeat([]byte{'k'}, 8192), value, nil)
	b.Append(base, nil, bytes.Repeat([]byte{'v'}, 8192), nil)
	b.Append(base+100_000, nil, value, nil)
	batch, err = b.Finish(compression.None)
	if err != nil {
		t.Fatal(err)
	}
	for i, rec := range recordBodies(t, batch) {
		if _, _, ok := quickRecord(rec, int64(i)-1, 3); ok {
			t.Fatalf("record %d: quickRecord took a record it does not read", i)
		}
		if _, _, reason := checkRecord(rec, int64(i)-1, 3); reason != "" {
			t.Fatalf("record %d: %s", i, reason)
		}
	}
}

// FuzzQuickRecord: whatever the bytes and deltas, a record quickRecord
// takes is one checkRecord accepts, with the same timestamp and offset
// deltas. (FuzzRecords checks checkFraming, which tries quickRecord first,
// against the decoder.)
func FuzzQuickRecord(f *testing.F) {
	value := bytes.Repeat([]byte{'v'}, 100)
	var b Builder
	b.Append(1_700_000_000_000, nil, value, nil)
	b.Append(1_700_000_000_100, []byte("k"), nil, nil)
	b.Append(1_700_000_000_000, []byte{}, value, []Header{{Key: "h"}})
	batch, err := b.Finish(compression.None)
	if err != nil {
		f.Fatal(err)
	}
	for i, rec := range recordBodies(f, batch) {
		f.Add(bytes.Clone(rec), int64(i)-1, int64(2))
	}
	f.Add([]byte{0, 0, 1, 1, 0}, int64(-1), int64(0))
	f.Add([]byte{0, 0, 1, 0xc8, 0x01, 0}, int64(-1), int64(0))
	f.Fuzz(func(t *testing.T, rec []byte, prevOff, lastDelta int64) {
		ts, off, ok := quickRecord(rec, prevOff, lastDelta)
		if !ok {
			return
		}
		wantTs, wantOff, reason := checkRecord(rec, prevOff, lastDelta)
		if reason != "" {
			t.Fatalf("quickRecord took a record checkRecord refuses: %s", reason)
		}
		if ts != wantTs || off != wantOff {
			t.Fatalf("quickRecord read (%d, %d), checkRecord (%d, %d)", ts, off, wantTs, wantOff)
		}
	})
}
