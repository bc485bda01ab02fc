package consumer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// Fetch's doc: "With an Err that says the partition is not there (an
// unknown topic or partition), both are -1, as the broker answered". A
// topic deleted while the position of a partition read in it was being
// reset after an offset out of range is found by the look-up of the
// reset position, not by a fetch: its Fetch must say -1 as well, not 0
// (which reads as an empty partition's offsets, and as a lag of -position).
func TestTopicGoneFoundByALookUpHasNoOffsets(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	ctx := testCtx(t)
	values(t, b, "t", 0, "a")
	c := newConsumer(t, b, consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start())) // the position knows its topic's ID
	fs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, fs.NumRecords())
	values(t, b, "t", 0, "b", "c")
	_, err = b.DeleteRecords(ctx, "t", 0, 3)
	require.NoError(t, err)
	fs, err = c.Poll(ctx) // finds 1 out of range: reset, looked up by the next Poll
	require.NoError(t, err)
	require.Empty(t, fs)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	fs, err = c.Poll(ctx)
	require.NoError(t, err)
	require.Len(t, fs, 1)
	f := fs[0]
	require.True(t, errors.Is(f.Err, api.ErrUnknownTopicOrPartition), "%v", f.Err)
	require.EqualValues(t, -1, f.HighWatermark, "no partition to tell of: %v", f.Err)
	require.EqualValues(t, -1, f.LogStartOffset, "no partition to tell of: %v", f.Err)
}
