package consumer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

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
