package consumer_test

import (
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

// TestReview41WholeFetchFailureWithLookUpDue: a Poll whose fetch fails as
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
func TestReview41WholeFetchFailureWithLookUpDue(t *testing.T) {
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
