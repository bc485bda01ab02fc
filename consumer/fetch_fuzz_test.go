package consumer

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// fuzzFetchSeeds are a fetch's answers as a Client sends them: batches of
// every codec laid end to end from offset 0 (one with headers, one with
// offset gaps as the cleaner leaves them, a control batch, an empty
// batch, one whose record does not decode), the same cut short, twice
// over (offsets going back), with a bad CRC, and with junk after.
func fuzzFetchSeeds(t testing.TB) [][]byte {
	var out []byte
	next := int64(0)
	add := func(codec compression.Codec, setup func(*record.Builder), edit func(record.Batch), n int) {
		var b record.Builder
		b.Reset()
		if setup != nil {
			setup(&b)
		}
		for i := range n {
			var hs []record.Header
			if i%2 == 1 {
				hs = []record.Header{{Key: "h", Value: []byte{byte(i)}}}
			}
			b.Append(1_700_000_000_000+int64(i), []byte{'k', byte('0' + i)}, []byte{'v', byte('0' + i)}, hs)
		}
		data, err := b.AppendTo(nil, codec)
		require.NoError(t, err)
		bt := record.Batch(data)
		bt.SetBaseOffset(next)
		if edit != nil {
			edit(bt)
		}
		bt.UpdateCRC()
		next = bt.NextOffset()
		out = append(out, data...)
	}
	add(compression.None, nil, nil, 3)
	add(compression.Gzip, nil, nil, 2)
	add(compression.None, nil, func(b record.Batch) { b[22] |= byte(record.AttrControl) }, 1)
	add(compression.Zstd, func(b *record.Builder) { b.SetProducer(7, 0, 0) }, nil, 4)
	add(compression.None, func(b *record.Builder) {
		b.AppendAt(0, 1_700_000_000_000, []byte("a"), []byte("1"), nil)
		b.AppendAt(4, 1_700_000_000_001, []byte("b"), []byte("2"), nil)
		b.SetLastOffsetDelta(6)
	}, nil, 0)
	// A record that does not decode (its header count claims two
	// headers, with no bytes for them) in a batch whose CRC is sound.
	add(compression.None, nil, func(b record.Batch) { b[len(b)-1] = 4 }, 1)
	add(compression.LZ4, nil, nil, 2)
	add(compression.Snappy, nil, nil, 1)
	add(compression.None, func(b *record.Builder) { b.SetLastOffsetDelta(2) }, nil, 0)
	badCRC := bytes.Clone(out)
	badCRC[len(badCRC)/2] ^= 1
	return [][]byte{out, out[:len(out)-5], append(bytes.Clone(out), out...), append(bytes.Clone(out), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13), badCRC, nil, make([]byte, record.HeaderSize)}
}

// FuzzFetchRecords: a fetch's answer from a Client (data, any bytes),
// at position from, below the high watermark hw, trimmed as Poll trims
// it and decoded as a Fetch. trim fails only with record.ErrCorrupt; it
// keeps whole batches that parse (and pass their CRC check when asked),
// laid end to end, holding records from from on and starting below hw,
// and moves the position to next, within (from, hw], also unchecked.
// The Fetch's Records yields in increasing offset order exactly the
// records of those batches in [from, next) outside control batches
// (none is lost: the position is past them), or a *PartitionError
// matching record.ErrCorrupt for a batch that does not decode;
// EachRecord yields the same records and keeps the first such error for
// Fetches.Err; NumRecords counts what Records yields when nothing
// failed to decode; and the data is left as it was. All but the first,
// the position's bounds and the last are checked for batches that pass
// record.Validate, as they do when trim checks them or the Client did.
func FuzzFetchRecords(f *testing.F) {
	for _, s := range fuzzFetchSeeds(f) {
		for _, c := range []struct{ from, hw int64 }{{0, 100}, {1, 100}, {4, 7}, {12, 13}, {0, 0}, {-5, math.MaxInt64}} {
			f.Add(s, c.from, c.hw, true)
			f.Add(s, c.from, c.hw, false)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, from, hw int64, check bool) {
		sent := bytes.Clone(data)
		kept, next, err := trim(data, from, hw, check)
		if err != nil {
			require.ErrorIs(t, err, record.ErrCorrupt)
		}
		if len(kept) == 0 {
			require.Equal(t, from, next, "no batch kept, the position moved")
			return
		}
		// The position moves forward, checked or not (a last offset
		// below the base is refused either way).
		require.Less(t, from, next)
		require.LessOrEqual(t, next, hw)
		// Without check, the Client vouches for the batches (a
		// CRCChecker, or CheckCRCs off), as Kafka's consumer trusts them
		// under check.crcs=false. The rest is checked for batches that
		// would pass the check.
		for b, err := range record.Batches(kept) {
			require.NoError(t, err, "trim kept a batch that does not parse")
			if check {
				require.NoError(t, b.Validate(0), "trim kept a batch whose CRC fails")
			} else if b.Validate(0) != nil {
				return
			}
		}
		// Whole batches of data, end to end, each one after the last.
		start := bytes.Index(data, kept) // kept is a sub-slice of data
		require.GreaterOrEqual(t, start, 0)
		var want []*record.Record
		prev := int64(math.MinInt64)
		decodes := true // as far as Records reads: to the first record at or past next
		reached := false
		for b := range record.Batches(kept) {
			require.Less(t, b.BaseOffset(), hw)
			require.GreaterOrEqual(t, b.BaseOffset(), prev, "batches out of order")
			prev = b.NextOffset()
			if b.IsControl() || reached {
				continue
			}
			for r, err := range b.Records() {
				if err != nil {
					decodes = false
					break
				}
				if r.Offset >= next {
					reached = true // Records stops there
					break
				}
				if r.Offset >= from {
					want = append(want, r)
				}
			}
		}
		require.Less(t, from, prev, "the first batch kept ends at or before from")

		fe := Fetch{Topic: "t", Partition: 3, Batches: kept, from: from, upTo: next}
		var got []*record.Record
		var errs []error
		for r, err := range fe.Records() {
			if err != nil {
				var pe *PartitionError
				require.ErrorAs(t, err, &pe)
				require.ErrorIs(t, err, record.ErrCorrupt)
				require.Equal(t, "t", pe.Topic)
				require.Equal(t, int32(3), pe.Partition)
				require.GreaterOrEqual(t, pe.Offset, from)
				require.LessOrEqual(t, pe.Offset, next)
				errs = append(errs, err)
				continue
			}
			require.Equal(t, "t", r.Topic)
			require.Equal(t, int32(3), r.Partition)
			require.GreaterOrEqual(t, r.Offset, from)
			require.Less(t, r.Offset, next)
			if len(got) > 0 {
				require.Greater(t, r.Offset, got[len(got)-1].Offset)
			}
			got = append(got, r)
		}
		if decodes {
			require.Empty(t, errs, "Records failed on batches that decode")
			require.Len(t, got, len(want), "the records in [%d, %d)", from, next)
			for i, r := range got {
				w := want[i]
				require.Equal(t, w.Offset, r.Offset)
				require.Equal(t, w.Key, r.Key, "offset %d", w.Offset)
				require.Equal(t, w.Value, r.Value, "offset %d", w.Offset)
				require.Equal(t, w.Timestamp, r.Timestamp, "offset %d", w.Offset)
				require.Equal(t, w.Headers, r.Headers, "offset %d", w.Offset)
			}
			require.Equal(t, len(got), fe.NumRecords())
		} else {
			require.NotEmpty(t, errs, "a batch that does not decode, and Records said nothing")
		}

		each := Fetch{Topic: "t", Partition: 3, Batches: kept, from: from, upTo: next}
		var eachGot []int64
		each.EachRecord(func(r *record.Record) { eachGot = append(eachGot, r.Offset) })
		var gotOffs []int64
		for _, r := range got {
			gotOffs = append(gotOffs, r.Offset)
		}
		require.Equal(t, gotOffs, eachGot, "EachRecord and Records")
		ferr := Fetches{each}.Err()
		require.Equal(t, len(errs) > 0, ferr != nil, "Fetches.Err after EachRecord: %v", ferr)
		if ferr != nil {
			require.True(t, errors.Is(ferr, record.ErrCorrupt))
		}
		require.Equal(t, sent, data, "the data changed")
	})
}
