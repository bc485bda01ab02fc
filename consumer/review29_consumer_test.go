package consumer_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview29LookUpDueIsNotLeftToTheLongPoll: under RetryBackoff(0) ("0
// retries at once") a look-up that failed with a retriable error is due
// again at once, but Poll's fetch request skipped the unresolved
// partition without counting it as a retry to wait for, so a Poll with
// nothing else to fetch waited the whole FetchMaxWait (an hour here)
// before the next Poll looked the position up again. Kafka's consumer
// caps its poll's wait at retry.backoff.ms while a position is missing.
func TestReview29LookUpDueIsNotLeftToTheLongPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a", "b")
		f := runneltest.NewFaults(t, b)
		fail := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "t", Err: api.ErrNotLeader, Count: 1})
		c, err := consumer.New(f, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(0))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Assign("t", 0, consumer.End()))
		t0 := time.Now()
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Empty(t, fs)
		require.Equal(t, 1, fail.Hits())
		require.Equal(t, t0, time.Now(), "the look-up is due again at once: the Poll does not wait")
		_, err = c.Poll(t.Context()) // looks it up again, then waits for records
		require.NoError(t, err)
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.EqualValues(t, 2, pos)
	})
}

// TestReview29LookUpDueDuringOthersLookUpsIsNotLeftToTheLongPoll: a
// look-up backed off for RetryBackoff becomes due while the Poll looks up
// another partition (a Client's round trip): the Poll's long poll, which
// begins after that, is not one "under way" when the backoff ended (see
// RetryBackoff), and must not hold the look-up back for FetchMaxWait.
func TestReview29LookUpDueDuringOthersLookUpsIsNotLeftToTheLongPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lookUps := map[int32]int{}
		fc := &fakeClient{t: t,
			listOffset: func(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
				lookUps[p]++
				if p == 0 && lookUps[p] == 1 {
					return api.ListedOffset{}, api.ErrNotLeader
				}
				if p == 1 {
					time.Sleep(2 * time.Second) // a slow round trip
				}
				return api.ListedOffset{Offset: 5, Timestamp: -1}, nil
			},
			fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				// Nothing to read: a long poll waits its MaxWait.
				select {
				case <-ctx.Done():
					return api.FetchResponse{}, ctx.Err()
				case <-time.After(req.MaxWait):
				}
				var resp api.FetchResponse
				for _, p := range req.Partitions {
					resp.Partitions = append(resp.Partitions, api.FetchedPartition{
						Topic: p.Topic, Partition: p.Partition, HighWatermark: 5})
				}
				return resp, nil
			},
		}
		c, err := consumer.New(fc, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(time.Second))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Assign("t", 0, consumer.End()))
		require.NoError(t, c.Assign("t", 1, consumer.End()))
		t0 := time.Now()
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Empty(t, fs)
		require.Equal(t, t0.Add(2*time.Second), time.Now(),
			"the look-up of partition 0, due since t0+1s, does not wait for an hour's long poll")
		_, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.Equal(t, 2, lookUps[0])
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.EqualValues(t, 5, pos)
	})
}

// TestReview29FailedFetchWaitEndsAtOtherRetry: a whole Fetch that fails
// with a retriable error backs off its partitions, and the Poll then
// "waits as a Poll with nothing to fetch does" — until the next backed
// off partition may be retried. It waited for the failed fetch's own
// backoff instead, though a partition backed off earlier (by its own
// error) was due before: that partition was fetched RetryBackoff late.
func TestReview29FailedFetchWaitEndsAtOtherRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fetches []api.FetchRequest
		fc := &fakeClient{t: t,
			fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				fetches = append(fetches, *req)
				switch len(fetches) {
				case 1: // partition 1 fails on its own, partition 0 has nothing
					var resp api.FetchResponse
					for _, p := range req.Partitions {
						fp := api.FetchedPartition{Topic: p.Topic, Partition: p.Partition}
						if p.Partition == 1 {
							fp.Err = api.ErrNotLeader
						}
						resp.Partitions = append(resp.Partitions, fp)
					}
					return resp, nil
				case 2: // the whole fetch (partition 0's) fails
					return api.FetchResponse{}, api.ErrRequestTimedOut
				}
				<-ctx.Done() // a long poll with nothing to read
				return api.FetchResponse{}, ctx.Err()
			},
		}
		c, err := consumer.New(fc, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(time.Second))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		require.NoError(t, c.Assign("t", 1, consumer.At(0)))
		t0 := time.Now()
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Empty(t, fs)
		time.Sleep(500 * time.Millisecond)
		fs, err = c.Poll(t.Context()) // fetches partition 0 alone; the fetch fails
		require.NoError(t, err)
		require.Empty(t, fs)
		require.Len(t, fetches, 2)
		require.Len(t, fetches[1].Partitions, 1)
		require.Equal(t, t0.Add(time.Second), time.Now(), "the wait ends when partition 1 may be retried")
	})
}
