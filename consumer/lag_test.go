package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestLag: Lag is the high watermark the last answering fetch saw, less
// the position: counted down record by record inside a Records loop (0 at
// the last record there), unchanged by appends until a fetch sees them,
// kept by a Seek back (as the Java consumer's seek keeps it), and unknown
// for a partition not assigned or not resolved.
func TestLag(t *testing.T) {
	ctx := testCtx(t)
	b := openBroker(t, map[string]int{"t": 2})
	values(t, b, "t", 0, seq("a", 0, 5)...)
	c := newConsumer(t, b)

	lag := func(p int32) (int64, bool) { return c.Lag("t", p) }
	_, ok := lag(0)
	require.False(t, ok, "not assigned")
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	_, ok = lag(0)
	require.False(t, ok, "not resolved")

	var lags []int64
	for r, err := range c.Records(ctx) {
		require.NoError(t, err)
		l, ok := lag(0)
		require.True(t, ok, "at offset %d", r.Offset)
		lags = append(lags, l)
		if l == 0 {
			break
		}
	}
	require.Equal(t, []int64{4, 3, 2, 1, 0}, lags)

	// Appends are not counted until a fetch sees them.
	values(t, b, "t", 0, seq("b", 0, 3)...)
	l, ok := lag(0)
	require.True(t, ok)
	require.Zero(t, l)
	pollUntil(t, c, 3)
	l, ok = lag(0)
	require.True(t, ok)
	require.Zero(t, l, "Poll took all 3")

	// Seek back: the high watermark seen (8) is kept, so Lag answers at
	// once.
	require.NoError(t, c.Seek("t", 0, consumer.At(6)))
	l, ok = lag(0)
	require.True(t, ok, "after Seek")
	require.Equal(t, int64(2), l, "at 6 of 8")
	require.Len(t, readN(t, c, 1), 1)
	l, ok = lag(0)
	require.True(t, ok)
	require.Equal(t, int64(1), l, "at 7 of 8")

	// A reset (offset out of range, ResetEarliest by default): the log's
	// records up to 8 are deleted; the fetch after it counts from 10.
	_, err := b.DeleteRecords(ctx, "t", 0, 8)
	require.NoError(t, err)
	values(t, b, "t", 0, seq("c", 0, 2)...)
	got := readN(t, c, 2)
	require.Equal(t, int64(8), got[0].Offset)
	l, ok = lag(0)
	require.True(t, ok)
	require.Zero(t, l)

	// An empty partition, read to its end: 0 at once after a Poll.
	require.NoError(t, c.Assign("t", 1, consumer.End()))
	for {
		_, ok := lag(1)
		if ok {
			break
		}
		_, err := c.Poll(ctx)
		require.NoError(t, err)
	}
	l, _ = lag(1)
	require.Zero(t, l)
}

// TestLagAfterReset: a reset after an offset out of range takes the high
// watermark the out-of-range answer gave (9, past the 2 the old position
// was read with), so Lag answers for the new position at once, before a
// fetch answers for it (the fetches after the reset all fail).
func TestLagAfterReset(t *testing.T) {
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
			require.EqualValues(t, api.Earliest, ts)
			return api.ListedOffset{Offset: 5}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0}
			switch fetches.Add(1) {
			case 1:
				fp.HighWatermark, fp.Records = 2, batchAt(t, 0, "a", "b")
			case 2:
				fp.Err, fp.LogStartOffset, fp.HighWatermark = log.ErrOffsetOutOfRange, 5, 9
			default:
				fp.Err = api.ErrNotLeader // retried: no high watermark
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 2, fs.NumRecords())
	lag, ok := c.Lag("t", 0)
	require.True(t, ok)
	require.Zero(t, lag)
	for fetches.Load() < 3 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs)
	}
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 5, pos, "reset to the log start")
	lag, ok = c.Lag("t", 0)
	require.True(t, ok, "no fetch answered for the new position")
	require.EqualValues(t, 4, lag, "the answer's high watermark 9 less the log start 5")
}
