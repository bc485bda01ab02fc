package consumer_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestLookUpDueIsNotLeftToTheLongPoll: under RetryBackoff(0) ("0
// retries at once") a look-up that failed with a retriable error is due
// again at once, but Poll's fetch request skipped the unresolved
// partition without counting it as a retry to wait for, so a Poll with
// nothing else to fetch waited the whole FetchMaxWait (an hour here)
// before the next Poll looked the position up again. Kafka's consumer
// caps its poll's wait at retry.backoff.ms while a position is missing.
func TestLookUpDueIsNotLeftToTheLongPoll(t *testing.T) {
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

// TestLookUpDueDuringOthersLookUpsIsNotLeftToTheLongPoll: a
// look-up backed off for RetryBackoff becomes due while the Poll looks up
// another partition (a Client's round trip): the Poll's long poll, which
// begins after that, is not one "under way" when the backoff ended (see
// RetryBackoff), and must not hold the look-up back for FetchMaxWait.
func TestLookUpDueDuringOthersLookUpsIsNotLeftToTheLongPoll(t *testing.T) {
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

// TestFailedFetchWaitEndsAtOtherRetry: a whole Fetch that fails
// with a retriable error backs off its partitions, and the Poll then
// "waits as a Poll with nothing to fetch does" — until the next backed
// off partition may be retried. It waited for the failed fetch's own
// backoff instead, though a partition backed off earlier (by its own
// error) was due before: that partition was fetched RetryBackoff late.
func TestFailedFetchWaitEndsAtOtherRetry(t *testing.T) {
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

// TestSynctestPausedLookUpRetriedAfterBackoff: a paused partition whose
// position is to be looked up is looked up by Poll, paused or not (see
// Pause); when that look-up fails with a retriable error, it is tried
// again after RetryBackoff, as for a partition that is not paused: a Poll
// with nothing to fetch ends its wait when the backoff ends ("until the
// backoff ends", see Poll), and the next Poll resolves the position — not
// an hour's FetchMaxWait later. (Kafka's consumer caps its poll's wait at
// retry.backoff.ms while a position is missing, paused or not.)
func TestSynctestPausedLookUpRetriedAfterBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := bubbleBroker(t)
		syncProduce(t, b, "a", "b")
		f := runneltest.NewFaults(t, b)
		fail := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "t", Err: api.ErrNotLeader, Count: 1})
		c, err := consumer.New(f, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(time.Second))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Assign("t", 0, consumer.End()))
		c.Pause(api.TopicPartition{Topic: "t", Partition: 0})
		t0 := time.Now()
		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Empty(t, fs)
		require.Equal(t, 1, fail.Hits())
		require.Equal(t, t0.Add(time.Second), time.Now(), "the Poll's wait ends with the look-up's backoff")
		_, ok := c.Position("t", 0)
		require.False(t, ok)
		_, err = c.Poll(t.Context()) // looks it up again, then waits for a change
		require.NoError(t, err)
		pos, ok := c.Position("t", 0)
		require.True(t, ok)
		require.EqualValues(t, 2, pos)
	})
}

// TestWholeFetchFailureWithLookUpDue: a Poll whose fetch fails as
// a whole with a retriable error waits "as a Poll with nothing to fetch
// does (up to FetchMaxWait, until a partition's backoff ends, the
// fetch's or an earlier one's, or a change)" (Poll's doc). When the
// backoff of a partition's failed look-up ended while this Poll looked up
// another (so the look-up is due, and not made by this Poll), that wait
// is over before it begins: the Poll returns nothing at once, and the
// next Poll makes the look-up, rather than waiting for the fetch's own
// backoff. (Seed 721562033683 of TestSynctestConsumerTimingModel met
// this, with the model waiting where the consumer did not.)
//
// On the fake clock, each call to the Client takes 10 ms, RetryBackoff is
// 15 ms: p1's look-up fails at 10 ms (backed off until 25 ms); p0's
// record comes at 20 ms; p2, assigned then, is looked up from 20 to 30
// ms, past p1's backoff; the fetch of p0 and p2 fails whole at 40 ms.
func TestWholeFetchFailureWithLookUpDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer func() { require.NoError(t, b.Close()) }()
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 3}))
		values(t, b, "t", 0, "a")
		f := runneltest.NewFaults(t, b)
		lookUp := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "t", Partitions: []int32{1}, Err: api.ErrNotLeader, Count: 1})
		const latency = 10 * time.Millisecond
		c, err := consumer.New(&slowCalls{Client: f, d: latency},
			consumer.FetchMaxWait(300*time.Millisecond), consumer.RetryBackoff(15*time.Millisecond))
		require.NoError(t, err)
		defer c.Close()
		var waits []time.Duration
		consumer.SetIdle(c, func(d time.Duration) { waits = append(waits, d) })
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		require.NoError(t, c.Assign("t", 1, consumer.Start()))
		t0 := time.Now()

		fs, err := c.Poll(t.Context())
		require.NoError(t, err)
		require.Len(t, fs, 1)
		require.EqualValues(t, 0, fs[0].Partition)
		require.Equal(t, 1, lookUp.Hits())
		require.Equal(t, t0.Add(2*latency), time.Now(), "p1's look-up failed, p0's fetch answered at once")

		require.NoError(t, c.Assign("t", 2, consumer.Start()))
		fetch := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "t", Partitions: []int32{0}, Err: api.ErrNotLeader, Count: 1})
		fs, err = c.Poll(t.Context())
		require.NoError(t, err)
		require.Empty(t, fs)
		require.Equal(t, 1, fetch.Hits())
		require.Equal(t, []time.Duration{0}, waits, "after the failed fetch, p1's look-up was due: no wait")
		require.Equal(t, t0.Add(4*latency), time.Now(), "the Poll returned when its fetch failed")
		_, ok := c.Position("t", 1)
		require.False(t, ok, "the look-up due is the next Poll's")
		pos, ok := c.Position("t", 2)
		require.True(t, ok)
		require.EqualValues(t, 0, pos)

		_, err = c.Poll(t.Context())
		require.NoError(t, err)
		pos, ok = c.Position("t", 1)
		require.True(t, ok, "the next Poll looked p1 up")
		require.EqualValues(t, 0, pos)
	})
}

// TestFetchHurriesWithErrorsInHand: a Poll that has errors to report
// already (a position whose look-up failed) does not make its fetch wait
// for FetchMinBytes: the fetch asks the Client to answer at once.
func TestFetchHurriesWithErrorsInHand(t *testing.T) {
	var waits []time.Duration
	client := &fakeClient{t: t,
		listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
			return api.ListedOffset{}, api.ErrInvalidRequest // reported, and stops partition 1
		},
		fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
			waits = append(waits, req.MaxWait)
			return api.FetchResponse{Partitions: []api.FetchedPartition{{Topic: "t", Partition: 0}}}, nil
		}}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.ErrorIs(t, fs.Err(), api.ErrInvalidRequest)
	require.Equal(t, []time.Duration{0}, waits)
}

// TestLookUpBackoffEndsAnotherPartitionsLongPoll: a position's look-up
// that failed with a retriable error (its topic not created yet) is
// retried when RetryBackoff ends, although another partition's long poll
// (FetchMaxWait an hour) is under way then: a ListOffset is a request of
// its own, which Kafka's consumer sends beside the fetch in flight. The
// topic created meanwhile is read at the first retry after it, not when
// the hour ends. (A topic deleted and created again under a Records loop
// met this: a look-up that raced the creation waited out the other
// partition's long poll.)
func TestLookUpBackoffEndsAnotherPartitionsLongPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 1}))
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(time.Second))
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Assign("t", 0, consumer.Start()))    // long-polls: t is empty
		require.NoError(t, c.Assign("late", 0, consumer.Start())) // no such topic yet
		t0 := time.Now()
		go func() {
			time.Sleep(2500 * time.Millisecond)
			if err := b.CreateTopic(context.Background(), "late", log.TopicConfig{Partitions: 1}); err != nil {
				t.Error(err)
				return
			}
			_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: "late", Acks: api.AcksAll, Batches: oneRecord(t, "x")})
			if err != nil {
				t.Error(err)
			}
		}()
		for r, err := range c.Records(testCtx(t)) {
			require.NoError(t, err)
			require.Equal(t, "late", r.Topic)
			require.Equal(t, "x", string(r.Value))
			break
		}
		// Look-ups at t0 (fails), t0+1s (fails), t0+2s (fails), t0+3s.
		require.Equal(t, t0.Add(3*time.Second), time.Now())
	})
}
