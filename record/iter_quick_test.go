package record

import (
	"bytes"
	"encoding/binary"
	"errors"
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
// after them, and checkFraming's verdict on them (the count, base
// timestamp and last offset delta in a header) is checkRecord's loop's
// alone: the same Timestamps, or the same error. (FuzzRecords checks
// checkFraming, which tries quickRecords first, against the decoder.)
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
	for _, batch := range mixedBatches(f) {
		f.Add([]byte(batch[HeaderSize:]), batch.NumRecords(), batch.BaseTimestamp(), int64(batch.LastOffsetDelta()), int64(-1))
	}
	f.Add([]byte{0x0c, 0, 0, 0, 1, 1, 0}, int32(1), int64(0), int64(0), int64(-1))
	f.Add([]byte{0x0e, 0, 0, 0, 1, 0xc8, 0x01, 0}, int32(1), int64(0), int64(0), int64(-1))
	// Record lengths below 1, which quickRecords turns back with no check
	// of their own: first (0, in one byte and in two: the record's last
	// byte would be the length's, 0), and after a record it takes (-1:
	// the last byte would be that record's header count, 0; -2, its
	// value's last byte; -8,192, before data).
	for _, length := range [][]byte{{0x00}, {0x80, 0x00}} {
		f.Add(append(length, 0, 0, 0, 0), int32(1), int64(0), int64(0), int64(-1))
	}
	var b1 Builder
	b1.Append(1_700_000_000_000, nil, value, nil)
	one, err := b1.Finish(compression.None)
	if err != nil {
		f.Fatal(err)
	}
	for _, length := range [][]byte{{0x01}, {0x03}, {0xff, 0x7f}} {
		data := append(append(bytes.Clone(one[HeaderSize:]), length...), 0, 0, 0, 0)
		f.Add(data, int32(2), one.BaseTimestamp(), int64(1), int64(-1))
	}
	f.Fuzz(func(t *testing.T, data []byte, n int32, base, lastDelta, prevOff int64) {
		if n < 0 {
			n = -n
		}
		checkQuick(t, data, n%1000, base, lastDelta, prevOff)
		checkFramingSame(t, framingHeader(n%1000, base, int32(lastDelta)), data)
	})
}

// mixedBatches are uncompressed batches of records that quickRecords
// takes (no header, short fields) and records that only checkRecord
// reads (a header, a timestamp delta or a value length of three bytes),
// in the orders that make checkFraming try quickRecords or stop trying
// it (2eff171c): the others first, then the common ones; common, others,
// common; others, common, others, common. Fuzz seeds, and batches that
// TestCheckFramingMatchesCheckRecordsLoop changes byte by byte.
func mixedBatches(tb testing.TB) []Batch {
	tb.Helper()
	const base = int64(1_700_000_000_000)
	value := bytes.Repeat([]byte{'v'}, 20)
	header := func(b *Builder, ts int64) {
		b.Append(ts, []byte("k"), value, []Header{{Key: "h", Value: []byte("hv")}})
	}
	plain := func(b *Builder, ts int64) { b.Append(ts, nil, value, nil) }
	long := func(b *Builder, ts int64) { b.Append(ts+100_000, nil, value, nil) } // a timestamp delta of 3 bytes
	big := func(b *Builder, ts int64) { b.Append(ts, nil, bytes.Repeat([]byte{'b'}, 8192), nil) }
	var out []Batch
	for _, shapes := range [][]func(*Builder, int64){
		{header, header, plain, plain, plain},
		{big, long, plain, plain},
		{plain, header, header, plain, plain},
		{header, plain, long, plain, header, plain},
	} {
		var b Builder
		for i, add := range shapes {
			add(&b, base+int64(i%3)*70-70)
		}
		batch, err := b.Finish(compression.None)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, append(Batch(nil), batch...))
	}
	return out
}

// slowCheckFraming is checkFraming as it was before quickRecords
// (4cefe88d): checkRecord's loop alone, for every record.
func slowCheckFraming(b Batch, data []byte, pos int64) (Timestamps, error) {
	n := b.NumRecords()
	if n < 0 {
		return noTimestamps, corrupt(pos, "negative record count")
	}
	base, tw := b.BaseTimestamp(), TimestampWalk{}
	lastDelta, prevOff := int64(b.LastOffsetDelta()), int64(-1)
	for i := int32(0); i < n; i++ {
		length, m := varint(data)
		if m <= 0 || length <= 0 || length > int64(len(data)-m) {
			return noTimestamps, corrupt(pos, "bad record length")
		}
		tsDelta, offDelta, reason := checkRecord(data[m+1:m+int(length)], prevOff, lastDelta)
		if reason != "" {
			return noTimestamps, corrupt(pos, reason)
		}
		prevOff = offDelta
		tw.Add(base + tsDelta)
		data = data[m+int(length):]
	}
	if len(data) != 0 {
		return noTimestamps, corrupt(pos, "record count disagrees with the records")
	}
	return tw.Timestamps(), nil
}

// framingHeader is a batch header (no records) with the fields
// checkFraming reads: the record count, base timestamp and last offset
// delta.
func framingHeader(n int32, base int64, lastDelta int32) Batch {
	h := make(Batch, HeaderSize)
	binary.BigEndian.PutUint32(h[offCount:], uint32(n))
	binary.BigEndian.PutUint64(h[offBaseTime:], uint64(base))
	binary.BigEndian.PutUint32(h[offLastDelta:], uint32(lastDelta))
	return h
}

// checkFramingSame fails t unless checkFraming gives for h's records,
// data, what slowCheckFraming gives: the same Timestamps, or a
// *CorruptError with the same Position, Reason and cause.
func checkFramingSame(t *testing.T, h Batch, data []byte) {
	t.Helper()
	const pos = 4242
	ts, err := h.checkFraming(data, pos)
	wantTs, wantErr := slowCheckFraming(h, data, pos)
	if ts != wantTs || (err == nil) != (wantErr == nil) {
		t.Fatalf("checkFraming gives (%+v, %v), checkRecord's loop alone (%+v, %v)", ts, err, wantTs, wantErr)
	}
	if err == nil {
		return
	}
	var ce, want *CorruptError
	if !errors.As(err, &ce) || !errors.As(wantErr, &want) || *ce != *want {
		t.Fatalf("checkFraming fails with %#v, checkRecord's loop alone with %#v", err, wantErr)
	}
}

// TestCheckFramingMatchesCheckRecordsLoop: for a batch of common records
// (taken by quickRecords) among others (a header, a key of 8 KiB, a
// timestamp delta of 100 s, an offset delta past 8,191), and for every
// copy of it with one byte changed (to 0x00, 0x01, 0x02, 0x7f, 0x80,
// 0xff, or by ±1) or cut short, and for each of its records cut short
// inside its fields, checkFraming gives what it gave before quickRecords:
// the same Timestamps, or the same error (Reason and Position). So for
// mixedBatches, among them batches whose first records only checkRecord
// reads, after which checkFraming tries quickRecords no more.
func TestCheckFramingMatchesCheckRecordsLoop(t *testing.T) {
	var b Builder
	const base = int64(1_700_000_000_000)
	value := bytes.Repeat([]byte{'v'}, 20)
	b.Append(base, nil, value, nil)
	b.Append(base+70, []byte("k"), nil, nil)
	b.Append(base-70, []byte{}, value, []Header{{Key: "h", Value: []byte{0}}})
	b.Append(base, nil, []byte{0}, nil)
	b.Append(base+100_000, nil, value, nil)
	b.Append(base, bytes.Repeat([]byte{'k'}, 8192), nil, nil)
	b.AppendAt(9000, base+1, nil, value, nil)
	b.AppendAt(9001, base+2, value, []byte{0, 0}, nil)
	batch, err := b.Finish(compression.None)
	if err != nil {
		t.Fatal(err)
	}
	checkFramingEveryChange(t, batch, base)
	// quickRecords takes at the start of each mixed batch its common
	// records before the first other one: none but in the third.
	firsts := []int32{0, 0, 1, 0}
	for i, batch := range mixedBatches(t) {
		data := []byte(batch[HeaderSize:])
		if k := checkQuick(t, data, batch.NumRecords(), batch.BaseTimestamp(), int64(batch.LastOffsetDelta()), -1); k != firsts[i] {
			t.Fatalf("mixed batch %d: quickRecords took %d records first, want %d", i, k, firsts[i])
		}
		checkFramingEveryChange(t, batch, batch.BaseTimestamp())
	}
}

// checkFramingEveryChange is TestCheckFramingMatchesCheckRecordsLoop's
// check of one batch, base the base timestamp of the headers it tries.
func checkFramingEveryChange(t *testing.T, batch Batch, base int64) {
	t.Helper()
	records := []byte(batch[HeaderSize:])
	n, lastDelta := batch.NumRecords(), batch.LastOffsetDelta()
	h := framingHeader(n, batch.BaseTimestamp(), lastDelta)
	if _, err := h.checkFraming(records, 0); err != nil {
		t.Fatalf("the batch itself: %v", err)
	}
	for _, hh := range []Batch{h, framingHeader(n-1, base, lastDelta), framingHeader(n+1, base, lastDelta), framingHeader(n, base, 9000)} {
		checkFramingSame(t, hh, records)
	}
	data := bytes.Clone(records)
	for i, orig := range records {
		for _, c := range []byte{0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, orig + 1, orig - 1} {
			data[i] = c
			checkFramingSame(t, h, data)
		}
		data[i] = orig
		checkFramingSame(t, h, records[:i])
	}
	// Each record cut short after each of its bytes, with a length that
	// says so and its last byte made 0 (a header count of 0), alone in a
	// batch: a field then reaches or crosses the record's last byte.
	h1 := framingHeader(1, base, lastDelta)
	for rest := records; len(rest) > 0; {
		length, m := varint(rest)
		rec := rest[m : m+int(length)]
		for j := 1; j <= len(rec); j++ {
			cut := binary.AppendVarint(nil, int64(j))
			cut = append(cut, rec[:j]...)
			cut[len(cut)-1] = 0
			checkFramingSame(t, h1, cut)
		}
		rest = rest[m+int(length):]
	}
}

// TestQuickRecordsOffsetDeltaIsA32BitField: an offset delta of three to
// five bytes is read as checkRecord reads it, as Kafka's readVarint does
// (a 32-bit field): the bits of a 5th byte past the 32nd dropped (taken,
// with that delta), and one of six bytes refused ("Varint is too long"),
// so not taken, though its 64-bit reading (0) would be in order.
func TestQuickRecordsOffsetDeltaIsA32BitField(t *testing.T) {
	for _, c := range []struct {
		offDelta  []byte
		lastDelta int64
		taken     bool
	}{
		{[]byte{0x80, 0x80, 0x01}, 8192, true},                  // 8,192, three bytes
		{[]byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, 1<<31 - 1, true}, // MaxInt32
		{[]byte{0x82, 0x80, 0x80, 0x80, 0x10}, 1, true},         // 1, with bit 32 set
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, false},  // 0 in six bytes
	} {
		// attributes, timestamp delta 0, the offset delta, a null key and
		// value, no header
		body := append(append([]byte{0, 0}, c.offDelta...), 1, 1, 0)
		data := append([]byte{byte(2 * len(body))}, body...)
		k := checkQuick(t, data, 1, 0, c.lastDelta, -1)
		if taken := k == 1; taken != c.taken {
			t.Errorf("offset delta % x: quickRecords took it: %v, want %v", c.offDelta, taken, c.taken)
		}
		checkFramingSame(t, framingHeader(1, 0, int32(c.lastDelta)), data)
	}
}
