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

// TestLagKeptAcrossMoves: a Seek, or an Assign of a partition already
// assigned, keeps the high watermark last seen, as the Java consumer's
// seek keeps it (SubscriptionState's highWatermark), so that Lag answers
// for the new position at once; but not for a position past it, nor a
// position to look up, nor a partition assigned anew.
func TestLagKeptAcrossMoves(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("a", 0, 10)...)
	c := newConsumer(t, b)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	pollUntil(t, c, 10)
	lag := func() (int64, bool) { return c.Lag("t", 0) }
	l, ok := lag()
	require.True(t, ok)
	require.Zero(t, l)

	// Appended since: not seen, the high watermark seen stays 10.
	values(t, b, "t", 0, seq("b", 0, 5)...)
	require.NoError(t, c.Seek("t", 0, consumer.At(4)))
	l, ok = lag()
	require.True(t, ok, "after a Seek back")
	require.EqualValues(t, 6, l)
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	l, ok = lag()
	require.True(t, ok, "after an Assign of the partition assigned")
	require.EqualValues(t, 8, l)
	require.NoError(t, c.Seek("t", 0, consumer.At(10)))
	l, ok = lag()
	require.True(t, ok, "at the high watermark seen")
	require.Zero(t, l)

	// Past it: the high watermark may have passed the position since (it
	// has: 15), so Lag does not tell until a fetch answers.
	require.NoError(t, c.Seek("t", 0, consumer.At(12)))
	_, ok = lag()
	require.False(t, ok, "past the high watermark seen")
	got := readN(t, c, 3)
	require.EqualValues(t, 12, got[0].Offset)
	l, ok = lag()
	require.True(t, ok)
	require.Zero(t, l)

	// A position to look up is not known until a Poll looks it up.
	require.NoError(t, c.Seek("t", 0, consumer.Start()))
	_, ok = lag()
	require.False(t, ok, "Start, not looked up")

	// Assigned anew: nothing seen of it since.
	c.Unassign("t", 0)
	require.NoError(t, c.Assign("t", 0, consumer.At(3)))
	_, ok = lag()
	require.False(t, ok, "assigned anew")
	pollUntil(t, c, 12)
	l, ok = lag()
	require.True(t, ok)
	require.Zero(t, l)
}

// TestLagAfterLookUp: a position looked up keeps the high watermark seen
// when it is at or below it (Start, a time); past it (a time that found
// records appended since) Lag does not tell; and End, which looks up the
// high watermark itself, takes it: Lag is 0 there at once, also when the
// end has moved past the one a fetch saw. The fetches after the first all
// fail (retried), so only the look-ups tell.
func TestLagAfterLookUp(t *testing.T) {
	var fetches, lookUps atomic.Int32
	var atTime atomic.Int64
	client := &fakeClient{t: t,
		listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
			lookUps.Add(1)
			switch ts {
			case api.Latest:
				return api.ListedOffset{Offset: 20}, nil
			case api.Earliest:
				return api.ListedOffset{Offset: 3}, nil
			}
			return api.ListedOffset{Offset: atTime.Load()}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0}
			if fetches.Add(1) == 1 {
				fp.HighWatermark = 10
			} else {
				fp.Err = api.ErrNotLeader // retried: no high watermark
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(10)))
	_, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	l, ok := c.Lag("t", 0)
	require.True(t, ok)
	require.Zero(t, l)

	lookUp := func(at consumer.Offset) (int64, bool) {
		t.Helper()
		require.NoError(t, c.Seek("t", 0, at))
		_, ok := c.Lag("t", 0)
		require.False(t, ok, "%v not looked up yet", at)
		for n := lookUps.Load(); lookUps.Load() == n; {
			_, err := c.Poll(testCtx(t))
			require.NoError(t, err)
		}
		_, ok = c.Position("t", 0)
		require.True(t, ok, "%v looked up", at)
		return c.Lag("t", 0)
	}
	l, ok = lookUp(consumer.End())
	require.True(t, ok, "End: the high watermark looked up")
	require.Zero(t, l)
	atTime.Store(15)
	l, ok = lookUp(consumer.AtTime(time.UnixMilli(1)))
	require.True(t, ok, "a time below the high watermark End saw")
	require.EqualValues(t, 5, l)
	l, ok = lookUp(consumer.Start())
	require.True(t, ok)
	require.EqualValues(t, 17, l)
	atTime.Store(25)
	_, ok = lookUp(consumer.AtTime(time.UnixMilli(2)))
	require.False(t, ok, "a time past the high watermark seen")
}

// TestLagForgottenWithTheTopic: a reset after an offset out of range
// whose look-up finds the topic created again (another ID) forgets the
// high watermark, which was the old topic's: Lag does not tell until a
// fetch answers for the new topic.
func TestLagForgottenWithTheTopic(t *testing.T) {
	oldID, newID := log.TopicID{1}, log.TopicID{2}
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
			require.EqualValues(t, api.Earliest, ts)
			return api.ListedOffset{Offset: 0, TopicID: newID}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", TopicID: oldID, Partition: 0}
			switch fetches.Add(1) {
			case 1:
				fp.HighWatermark, fp.Records = 2, batchAt(t, 0, "a", "b")
			case 2:
				fp.Err, fp.LogStartOffset, fp.HighWatermark = log.ErrOffsetOutOfRange, 5, 9
			default:
				fp.Err = api.ErrNotLeader
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 2, fs.NumRecords())
	var replaced bool
	for !replaced {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		for _, f := range fs {
			require.ErrorIs(t, f.Err, api.ErrUnknownTopicID)
			replaced = true
		}
	}
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.Zero(t, pos, "looked up in the new topic")
	l, ok := c.Lag("t", 0)
	require.False(t, ok, "Lag %d from the old topic's high watermark", l)
}
