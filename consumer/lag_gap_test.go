package consumer_test

import (
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestLagZeroAtLastRecordBeforeGap: a fetch whose last batch ends past its
// last record (the records after it compacted away, as a tombstone past
// its delete horizon is at the end of a compacted topic) still brings Lag
// to 0 at that record inside a Records loop, so that a loop that stops at
// 0 stops there (it waited for new records before: Lag stayed 1).
func TestLagZeroAtLastRecordBeforeGap(t *testing.T) {
	var bld record.Builder
	bld.Append(1, []byte("k1"), []byte("a"), nil)
	bld.Append(1, []byte("k2"), []byte("b"), nil)
	bld.SetLastOffsetDelta(2) // offset 2, a tombstone, cleaned away
	data, err := bld.AppendTo(nil, compression.None)
	require.NoError(t, err)
	var n atomic.Int32
	c := newConsumer(t, serve(t, 3, data, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))

	var lags []int64
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		l, ok := c.Lag("t", 0)
		require.True(t, ok)
		lags = append(lags, l)
		if l == 0 || r.Offset == 1 {
			break
		}
	}
	require.Equal(t, []int64{2, 0}, lags)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 3, pos, "past the gap: the next fetch is from the end")
}

// TestPositionBeforeAGapIsPastTheRecordInHand: inside a Records loop the
// position is the offset after the record in hand, not the next record's
// offset, when a compacted gap (inside a batch) or a control batch lies
// between them: only the fetch's last record takes the position past what
// follows it, to the end of the fetch.
func TestPositionBeforeAGapIsPastTheRecordInHand(t *testing.T) {
	var bld record.Builder
	bld.AppendAt(0, 1, nil, []byte("a"), nil)
	bld.AppendAt(2, 1, nil, []byte("b"), nil) // offset 1 compacted away
	data, err := bld.AppendTo(nil, compression.None)
	require.NoError(t, err)
	marker := batchAt(t, 3, "marker")
	setControl(marker)
	data = cat(data, marker, batchAt(t, 4, "c"))
	var n atomic.Int32
	c := newConsumer(t, serve(t, 5, data, &n))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))

	var got []string
	var pos, lags []int64
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		got = append(got, string(r.Value))
		p, ok := c.Position("t", 0)
		require.True(t, ok)
		pos = append(pos, p)
		l, ok := c.Lag("t", 0)
		require.True(t, ok)
		lags = append(lags, l)
		if r.Offset == 4 {
			break
		}
	}
	require.Equal(t, []string{"a", "b", "c"}, got)
	require.Equal(t, []int64{1, 3, 5}, pos)
	require.Equal(t, []int64{4, 2, 0}, lags)
}
