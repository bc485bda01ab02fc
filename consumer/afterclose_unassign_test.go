package consumer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// TestUnassignAfterCloseKeepsPositions: after Close every method returns
// ErrClosed or does nothing, but Position and Assigned, which still tell
// where each partition stopped, for the application to save (Close's
// doc). An Unassign after Close — a clean-up deferred before the one that
// saves the positions, say — does nothing: the positions are still there.
// So do Pause and Resume.
func TestUnassignAfterCloseKeepsPositions(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2})
	values(t, b, "t", 0, "a", "b")
	values(t, b, "t", 1, "c")
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))
	pollUntil(t, c, 3)
	require.NoError(t, c.Close())

	tp0, tp1 := api.TopicPartition{Topic: "t", Partition: 0}, api.TopicPartition{Topic: "t", Partition: 1}
	c.Pause(tp0)
	c.Resume(tp0)
	c.Unassign("t", 0)
	c.Unassign("t", 1)
	require.Equal(t, []api.TopicPartition{tp0, tp1}, c.Assigned())
	for p, want := range []int64{2, 1} {
		pos, ok := c.Position("t", int32(p))
		require.True(t, ok, "partition %d", p)
		require.Equal(t, want, pos, "partition %d", p)
	}
}
