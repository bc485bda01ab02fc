package record

import (
	"bytes"
	"testing"

	"github.com/runnel/runnel/compression"
)

// walkState is checkFraming's loop's state after some records: the bytes
// they took, the last offset delta and the timestamps gathered.
type walkState struct {
	used    int
	prevOff int64
	tw      TimestampWalk
}

// slowWalk walks up to n records of data as checkFraming did before
// quickRecords, with checkRecord alone, and returns the state after each
// record it accepts (states[0] before any).
func slowWalk(data []byte, n int32, base, lastDelta, prevOff int64) []walkState {
	st := walkState{prevOff: prevOff}
	states := []walkState{st}
	for range n {
		rest := data[st.used:]
		length, m := varint(rest)
		if m <= 0 || length <= 0 || length > int64(len(rest)-m) {
			break
		}
		tsDelta, offDelta, reason := checkRecord(rest[m+1:m+int(length)], st.prevOff, lastDelta)
		if reason != "" {
			break
		}
		st.prevOff = offDelta
		st.tw.Add(base + tsDelta)
		st.used += m + int(length)
		states = append(states, st)
	}
	return states
}

// checkQuick runs quickRecords on data and fails t unless the records it
// took are ones slowWalk accepts, with the same state after them; it
// returns how many it took.
func checkQuick(t *testing.T, data []byte, n int32, base, lastDelta, prevOff int64) int32 {
	t.Helper()
	prev, tw := prevOff, TimestampWalk{}
	k, used := quickRecords(data, n, base, lastDelta, &prev, &tw)
	states := slowWalk(data, n, base, lastDelta, prevOff)
	if k < 0 || int(k) >= len(states) {
		t.Fatalf("quickRecords took %d records, checkRecord accepts %d", k, len(states)-1)
	}
	if want := states[k]; used != want.used || prev != want.prevOff || tw != want.tw {
		t.Fatalf("after %d records quickRecords has (%d bytes, offset delta %d, %+v), checkRecord's walk (%d, %d, %+v)",
			k, used, prev, tw, want.used, want.prevOff, want.tw)
	}
	return k
}

// TestQuickRecordsTakesTheCommonRecord: records without headers whose
// timestamp delta and key and value lengths fit in two bytes each (null,
// empty and 100-byte keys and values, timestamp deltas past 63 and
// negative), whatever their offset delta (past 8,191 too), are all taken
// by quickRecords, with checkRecord's state after them; it stops at a
// record with a header, with a key or value of 8 KiB (a length of three
// bytes), or with a timestamp delta of 100 s (three bytes), which
// checkRecord accepts.
func TestQuickRecordsTakesTheCommonRecord(t *testing.T) {
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
	data := []byte(batch[HeaderSize:])
	if k := checkQuick(t, data, batch.NumRecords(), batch.BaseTimestamp(), int64(batch.LastOffsetDelta()), -1); k != batch.NumRecords() {
		t.Fatalf("quickRecords took %d records of %d", k, batch.NumRecords())
	}

	for _, other := range []func(b *Builder){
		func(b *Builder) { b.Append(base, nil, value, []Header{{Key: "h", Value: []byte("v")}}) },
		func(b *Builder) { b.Append(base, bytes.Repeat([]byte{'k'}, 8192), value, nil) },
		func(b *Builder) { b.Append(base, nil, bytes.Repeat([]byte{'v'}, 8192), nil) },
		func(b *Builder) { b.Append(base+100_000, nil, value, nil) },
	} {
		b.Reset()
		b.Append(base, nil, value, nil)
		other(&b)
		b.Append(base, nil, value, nil)
		batch, err := b.Finish(compression.None)
		if err != nil {
			t.Fatal(err)
		}
		data := []byte(batch[HeaderSize:])
		if k := checkQuick(t, data, 3, batch.BaseTimestamp(), 2, -1); k != 1 {
			t.Fatalf("quickRecords took %d records, want the first only", k)
		}
		if states := slowWalk(data, 3, batch.BaseTimestamp(), 2, -1); len(states) != 4 {
			t.Fatalf("checkRecord accepts %d records of 3", len(states)-1)
		}
	}
}

// FuzzQuickRecords: whatever the bytes, count and deltas, the records
// quickRecords takes are ones checkRecord accepts, with the same state
// after them. (FuzzRecords checks checkFraming, which tries quickRecords
// first, against the decoder.)
func FuzzQuickRecords(f *testing.F) {
	value := bytes.Repeat([]byte{'v'}, 100)
	var b Builder
	b.Append(1_700_000_000_000, nil, value, nil)
	b.Append(1_700_000_000_100, []byte("k"), nil, nil)
	b.Append(1_700_000_000_000, []byte{}, value, []Header{{Key: "h"}})
	b.Append(1_700_000_000_000, nil, value, nil)
	batch, err := b.Finish(compression.None)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(batch[HeaderSize:]), int32(4), batch.BaseTimestamp(), int64(3), int64(-1))
	f.Add([]byte{0x0c, 0, 0, 0, 1, 1, 0}, int32(1), int64(0), int64(0), int64(-1))
	f.Add([]byte{0x0e, 0, 0, 0, 1, 0xc8, 0x01, 0}, int32(1), int64(0), int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, data []byte, n int32, base, lastDelta, prevOff int64) {
		if n < 0 {
			n = -n
		}
		checkQuick(t, data, n%1000, base, lastDelta, prevOff)
	})
}
