package producer_test

import (
	"encoding/binary"
	"math"
	"strconv"
	"testing"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestProduceRecordPast2GiBOn32Bit: on a 32-bit platform a record whose
// headers share one value of 64 MiB, more than 2 GiB in all, is refused
// with ErrRecordTooLarge, and nothing is written: whether a 32-bit int sum
// of its lengths wraps to a negative size (33 headers), which marked the
// record dropped, so that ProduceSync returned nil for a record never
// sent, or to a small positive one (64 headers of a length picked for
// it), which passed as a record of a few bytes; or values that sum to
// just under 2 GiB, past it with the headers' keys and length prefixes.
// record.BodySize saturates there (record's TestBodySizeOn32Bit), past
// any batch. A 64-bit int does not wrap: the test runs only where int has
// 32 bits (GOARCH=386 go test ./producer).
func TestProduceRecordPast2GiBOn32Bit(t *testing.T) {
	if strconv.IntSize != 32 {
		t.Skip("a 64-bit int: record sizes do not wrap")
	}
	buf := make([]byte, 64<<20)
	headers := func(n, length int) []record.Header {
		hs := make([]record.Header, n)
		for i := range hs {
			hs[i] = record.Header{Key: "h", Value: buf[:length]}
		}
		return hs
	}
	// size32 is the record's body size summed in int64, then wrapped to
	// 32 bits as an int sum of the lengths wrapped.
	size32 := func(hs []record.Header) int32 {
		prefix := func(n int) int64 { return int64(len(binary.AppendVarint(nil, int64(n)))) }
		field := func(n int) int64 { return prefix(n) + int64(n) }
		n := 3 + 2 + prefix(len(hs)) // attributes, deltas, a nil key and value (1 byte each), the count
		for _, h := range hs {
			n += field(len(h.Key)) + field(len(h.Value))
		}
		require.Greater(t, n, int64(math.MaxInt32), "%d headers", len(hs))
		return int32(n)
	}
	negative := headers(33, len(buf))
	require.Negative(t, size32(negative), "the sum wraps to a negative size")
	small := headers(64, len(buf)-6)
	require.Equal(t, int32(7), size32(small), "the sum wraps to a small size")
	// Values that sum to just under 2 GiB, whose record is over it by its
	// headers' keys and length prefixes (6 bytes each); and values 710
	// bytes under it, over it by a long key.
	under := headers(32, len(buf))
	under[31].Value = buf[:len(buf)-151]
	keyed := headers(32, len(buf))
	keyed[31].Value = buf[:len(buf)-711]
	keyed[0].Key = string(buf[:1000])
	for _, hs := range [][]record.Header{under, keyed} {
		values := 0
		for _, h := range hs {
			values += len(h.Value)
		}
		require.LessOrEqual(t, values, math.MaxInt32-150)
		require.Negative(t, size32(hs), "the sum wraps by the headers' keys and prefixes")
	}

	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b)
	ctx := testCtx(t)
	// The negative first: without the check, the small one is encoded at
	// its full size, which ends the process (out of memory).
	for _, hs := range [][]record.Header{negative, under, keyed, small} {
		r := &record.Record{Topic: "t", Headers: hs}
		require.ErrorIs(t, p.ProduceSync(ctx, r), producer.ErrRecordTooLarge, "%d headers", len(hs))
	}
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("v")}))
	require.Len(t, readBatches(t, b, "t", 0), 1, "the small record alone was written")
}
