package consumer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// A Seek to the offset the partition is already at, made while a fetch
// from it is in flight, still makes that fetch's answer stale: Seek takes
// the offset in the topic there now (it forgets the topic ID), so an
// answer about the old topic (api.ErrUnknownTopicID: deleted and created
// again) must not reset or stop the position the application just gave.
func TestSeekToSameOffsetDuringFetchDropsItsError(t *testing.T) {
	for _, policy := range []consumer.ResetPolicy{consumer.ResetEarliest, consumer.ResetNone} {
		t.Run(policy.String(), func(t *testing.T) {
			oldID, newID := log.NewTopicID(), log.NewTopicID()
			var c *consumer.Consumer
			var fetches atomic.Int32
			var third api.FetchPartition
			client := &fakeClient{t: t,
				listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
					return api.ListedOffset{}, fmt.Errorf("unexpected ListOffset: the position was reset")
				},
				fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
					p := req.Partitions[0]
					switch fetches.Add(1) {
					case 1: // the old topic: records 10 and 11
						return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: oldID,
							HighWatermark: 12, Records: batchAt(t, 10, "a", "b")}}}, nil
					case 2: // the topic is created again; the application seeks meanwhile
						require.Equal(t, oldID, p.TopicID)
						require.NoError(t, c.Seek("t", 0, consumer.At(12)))
						return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t",
							Err: fmt.Errorf("%w: recreated", api.ErrUnknownTopicID)}}}, nil
					default:
						third = p
						return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: newID,
							HighWatermark: 13, Records: batchAt(t, 12, "new")}}}, nil
					}
				},
			}
			c = newConsumer(t, client, consumer.ResetOffset(policy), consumer.FetchMaxWait(time.Millisecond),
				consumer.RetryBackoff(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.At(10)))
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			require.Equal(t, 2, fs.NumRecords())

			fs, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err(), "the error answered a fetch made before the Seek")
			pos, ok := c.Position("t", 0)
			require.True(t, ok)
			require.EqualValues(t, 12, pos)

			fs, err = c.Poll(testCtx(t))
			require.NoError(t, err)
			require.NoError(t, fs.Err())
			g := &got{}
			g.add(fs)
			require.Equal(t, []string{"new"}, g.values("t", 0))
			require.EqualValues(t, 12, third.Offset)
			require.True(t, third.TopicID.IsZero(), "Seek forgets the old topic's ID")
		})
	}
}

// The same inside a Records loop: after a Seek to the offset the loop is
// at, the rest of the fetch made before is not yielded.
func TestSeekToSameOffsetInsideRecordsRefetches(t *testing.T) {
	oldID := log.NewTopicID()
	var fetches atomic.Int32
	var second api.FetchPartition
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		if fetches.Add(1) == 1 {
			return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: oldID,
				HighWatermark: 13, Records: batchAt(t, 10, "old-a", "old-b", "old-c")}}}, nil
		}
		second = req.Partitions[0]
		return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", TopicID: log.NewTopicID(),
			HighWatermark: 12, Records: batchAt(t, 11, "new")}}}, nil
	}}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(10)))
	var got []string
	for r, err := range c.Records(testCtx(t)) {
		require.NoError(t, err)
		got = append(got, string(r.Value))
		if len(got) == 1 {
			require.NoError(t, c.Seek("t", 0, consumer.At(11)))
		}
		if len(got) == 2 {
			break
		}
	}
	require.Equal(t, []string{"old-a", "new"}, got)
	require.EqualValues(t, 11, second.Offset)
	require.True(t, second.TopicID.IsZero())
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 12, pos)
}
