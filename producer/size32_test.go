package producer_test

import (
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
// with ErrRecordTooLarge, and nothing is written: whether record.BodySize's
// int sum wraps to a negative size (33 headers), which marked the record
// dropped, so that ProduceSync returned nil for a record never sent, or
// to a small positive one (64 headers of a length picked for it), which
// passed as a record of a few bytes; or values that sum to just under
// 2 GiB, past it with the headers' keys and length prefixes, which the
// bound counts too. A 64-bit int does not wrap: the test runs only where
// int has 32 bits (GOARCH=386 go test ./producer).
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
	negative := headers(33, len(buf))
	require.Negative(t, record.BodySize(nil, nil, negative), "the sum wraps to a negative size")
	var small []record.Header
	for length := len(buf); length > len(buf)-100 && small == nil; length-- {
		if hs := headers(64, length); record.BodySize(nil, nil, hs) > 0 && record.BodySize(nil, nil, hs) < 1000 {
			small = hs
		}
	}
	require.NotNil(t, small, "no length wraps the sum of 64 headers to a small size")
	// Values that sum to just under 2 GiB, whose record is over it by its
	// headers' keys and length prefixes (6 bytes each); and values 710
	// bytes under it, over it by a long key: the bound counts both, and
	// the prefixes at their longest.
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
		require.Negative(t, record.BodySize(nil, nil, hs), "the sum wraps by the headers' keys and prefixes")
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
