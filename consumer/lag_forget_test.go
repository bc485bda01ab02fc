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

// TestLagAfterResetTakesTheAnswersHighWatermark: a reset after an offset
// out of range takes the high watermark the answer gave, whatever it is,
// in place of the one seen before, which was the log's before a cut: 0
// for a log cut to nothing (Lag 0 at the log start 0, not the 2 of the
// log read before); and an answer that gives none (-1, as Kafka's broker
// answers an offset out of range: ReplicaManager's readFromLog) leaves it
// unknown, not the old log's. The fetches after the reset all fail, so
// only the reset tells.
func TestLagAfterResetTakesTheAnswersHighWatermark(t *testing.T) {
	for _, tc := range []struct {
		name     string
		hw       int64 // the out-of-range answer's
		lag      int64
		lagKnown bool
	}{
		{"cut to nothing", 0, 0, true},
		{"cut", 1, 1, true},
		{"not told", -1, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fetches atomic.Int32
			client := &fakeClient{t: t,
				listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
					require.EqualValues(t, api.Earliest, ts)
					return api.ListedOffset{Offset: 0}, nil
				},
				fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
					fp := api.FetchedPartition{Topic: "t", Partition: 0}
					switch fetches.Add(1) {
					case 1:
						fp.HighWatermark, fp.Records = 2, batchAt(t, 0, "a", "b")
					case 2:
						fp.Err, fp.LogStartOffset, fp.HighWatermark = log.ErrOffsetOutOfRange, min(tc.hw, 0), tc.hw
					default:
						fp.Err = api.ErrNotLeader // retried
					}
					return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
				}}
			c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			for fetches.Load() < 3 {
				_, err := c.Poll(testCtx(t))
				require.NoError(t, err)
			}
			pos, ok := c.Position("t", 0)
			require.True(t, ok)
			require.Zero(t, pos, "reset to the log start")
			lag, ok := c.Lag("t", 0)
			require.Equal(t, tc.lagKnown, ok, "Lag %d", lag)
			if ok {
				require.Equal(t, tc.lag, lag)
			}
		})
	}
}

// TestLagForgottenOnceAFetchFindsTheTopicGone: after a Seek, which keeps
// the high watermark, a fetch that finds the topic gone (an unknown topic
// is retried then: the position was not read since the Seek, so it is
// not known to be gone with it) forgets it, as Lag's doc says: the
// topic's high watermark is not 2 any more, there is none.
func TestLagForgottenOnceAFetchFindsTheTopicGone(t *testing.T) {
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0}
			if fetches.Add(1) == 1 {
				fp.HighWatermark, fp.Records = 2, batchAt(t, 0, "a", "b")
			} else {
				fp.Err, fp.LogStartOffset, fp.HighWatermark = api.ErrUnknownTopicOrPartition, -1, -1
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 2, fs.NumRecords())
	require.NoError(t, c.Seek("t", 0, consumer.At(1)))
	l, ok := c.Lag("t", 0)
	require.True(t, ok, "kept by the Seek")
	require.EqualValues(t, 1, l)
	for fetches.Load() < 2 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		require.Empty(t, fs, "retried")
	}
	l, ok = c.Lag("t", 0)
	require.False(t, ok, "Lag %d of a topic a fetch found gone", l)
}

// TestLagForgottenWhenALookUpFindsAnotherTopic: a position looked up
// after a Seek (which forgets the topic ID: the offset is the topic's
// there then) in a topic created again since the high watermark was seen
// does not take the old topic's high watermark: the look-up's topic ID
// is not the one the fetch that gave it named. A paused partition is
// looked up but not fetched, so Lag would tell the old topic's lag until
// Resume.
func TestLagForgottenWhenALookUpFindsAnotherTopic(t *testing.T) {
	oldID, newID := log.TopicID{1}, log.TopicID{2}
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
			if ts == api.Latest {
				return api.ListedOffset{Offset: 3, TopicID: newID}, nil
			}
			require.EqualValues(t, api.Earliest, ts)
			return api.ListedOffset{Offset: 0, TopicID: newID}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0, TopicID: oldID}
			if fetches.Add(1) == 1 {
				fp.HighWatermark, fp.Records = 9, batchAt(t, 0, seq("a", 0, 9)...)
			} else {
				require.Equal(t, newID, req.Partitions[0].TopicID)
				fp.TopicID, fp.HighWatermark, fp.Records = newID, 3, batchAt(t, 0, "x", "y", "z")
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 9, fs.NumRecords())

	tp := api.TopicPartition{Topic: "t", Partition: 0}
	c.Pause(tp)
	lookUp := func(at consumer.Offset) (int64, bool) {
		t.Helper()
		require.NoError(t, c.Seek("t", 0, at))
		for {
			_, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			if _, ok := c.Position("t", 0); ok {
				return c.Lag("t", 0)
			}
		}
	}
	l, ok := lookUp(consumer.Start())
	require.False(t, ok, "Lag %d from the old topic's high watermark", l)
	// End takes the new topic's high watermark, which a look-up in the
	// same topic then keeps.
	l, ok = lookUp(consumer.End())
	require.True(t, ok)
	require.Zero(t, l)
	l, ok = lookUp(consumer.Start())
	require.True(t, ok, "the high watermark End found in the new topic")
	require.EqualValues(t, 3, l)

	c.Resume(tp)
	fs, err = c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 3, fs.NumRecords())
	l, ok = c.Lag("t", 0)
	require.True(t, ok)
	require.Zero(t, l)
}

// TestLagAfterResetInATopicCreatedAgain: the high watermark an offset
// out of range gave is kept by the reset's look-up in the same topic,
// also when the topic is not the one read before (the fetch from a
// position given with At names no topic ID, and the topic was created
// again since): the answer's topic ID is the one the look-up finds.
func TestLagAfterResetInATopicCreatedAgain(t *testing.T) {
	oldID, newID := log.TopicID{1}, log.TopicID{2}
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		listOffset: func(_ context.Context, _ string, _ int32, ts int64) (api.ListedOffset, error) {
			require.EqualValues(t, api.Earliest, ts)
			return api.ListedOffset{Offset: 0, TopicID: newID}, nil
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0}
			switch fetches.Add(1) {
			case 1:
				fp.TopicID, fp.HighWatermark, fp.Records = oldID, 2, batchAt(t, 0, "a", "b")
			case 2:
				require.True(t, req.Partitions[0].TopicID.IsZero(), "At names no topic")
				fp.TopicID, fp.Err, fp.LogStartOffset, fp.HighWatermark = newID, log.ErrOffsetOutOfRange, 0, 1
			default:
				fp.Err = api.ErrNotLeader // retried
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 2, fs.NumRecords())
	require.NoError(t, c.Seek("t", 0, consumer.At(5)))
	for fetches.Load() < 3 {
		_, err := c.Poll(testCtx(t))
		require.NoError(t, err)
	}
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.Zero(t, pos, "reset to the new topic's start")
	l, ok := c.Lag("t", 0)
	require.True(t, ok, "the out-of-range answer's high watermark, the new topic's")
	require.EqualValues(t, 1, l)
}

// TestLagOutOfRangeUnderResetNone: under ResetNone an offset out of range
// is reported and the position stays, past the log end when the log was
// cut under it: Lag then counts from the high watermark the answer gave
// (1), and is negative, as its doc says of a log that lost records past
// the position, not 0 from the high watermark of the log before the cut.
func TestLagOutOfRangeUnderResetNone(t *testing.T) {
	var fetches atomic.Int32
	client := &fakeClient{t: t,
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			fp := api.FetchedPartition{Topic: "t", Partition: 0}
			if fetches.Add(1) == 1 {
				fp.HighWatermark, fp.Records = 2, batchAt(t, 0, "a", "b")
			} else {
				fp.Err, fp.LogStartOffset, fp.HighWatermark = log.ErrOffsetOutOfRange, 0, 1
			}
			return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
		}}
	c := newConsumer(t, client, consumer.ResetOffset(consumer.ResetNone), consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Equal(t, 2, fs.NumRecords())
	fs, err = c.Poll(testCtx(t))
	require.NoError(t, err)
	require.Len(t, fs, 1)
	require.ErrorIs(t, fs[0].Err, log.ErrOffsetOutOfRange)
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 2, pos, "left where it was")
	l, ok := c.Lag("t", 0)
	require.True(t, ok)
	require.EqualValues(t, -1, l, "the answer's high watermark 1 less the position 2")
}
