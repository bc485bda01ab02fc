package consumer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview32ResetTakesTheNextPoll pins what Poll's doc says of a
// position out of range under ResetEarliest and ResetLatest: the Poll that
// meets it returns none of the partition's records and leaves the
// position to be looked up (Position false), and the next Poll reads from
// the log start or the high watermark. A first-time user expected one
// Poll to do both, as a Java consumer's poll does within its timeout.
func TestReview32ResetTakesTheNextPoll(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "a", "b", "c", "d")
	_, err := b.DeleteRecords(t.Context(), "t", 0, 2)
	require.NoError(t, err)
	for _, tc := range []struct {
		policy consumer.ResetPolicy
		first  int64 // -1: no record, the position at the high watermark
	}{{consumer.ResetEarliest, 2}, {consumer.ResetLatest, -1}} {
		c := runneltest.NewConsumer(t, b, consumer.ResetOffset(tc.policy), consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(1)))
		fs, err := c.Poll(t.Context())
		require.NoError(t, err, tc.policy)
		require.NoError(t, fs.Err(), tc.policy)
		require.Zero(t, fs.NumRecords(), tc.policy)
		_, ok := c.Position("t", 0)
		require.False(t, ok, "%v: the reset position is looked up by the next Poll", tc.policy)

		fs, err = c.Poll(t.Context())
		require.NoError(t, err, tc.policy)
		var offsets []int64
		fs.EachRecord(func(r *record.Record) { offsets = append(offsets, r.Offset) })
		pos, ok := c.Position("t", 0)
		require.True(t, ok, tc.policy)
		if tc.first < 0 {
			require.Empty(t, offsets, tc.policy)
			require.Equal(t, int64(4), pos, tc.policy)
		} else {
			require.Equal(t, []int64{2, 3}, offsets, tc.policy)
		}
	}
}
