package consumer_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
)

// TestBadTopicRefusedBeforeBadOffset: a call that names a bad topic (or
// partition) and a bad offset at once is refused for the topic (or the
// partition), the first argument, as each of Assign, AssignTopic and
// Seek checks them in that order.
func TestBadTopicRefusedBeforeBadOffset(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	ctx := testCtx(t)
	c := newConsumer(t, b)
	bad := consumer.At(-1)
	for name, call := range map[string]func() error{
		"Assign topic":      func() error { return c.Assign("", 0, bad) },
		"Assign partition":  func() error { return c.Assign("t", -1, bad) },
		"AssignTopic topic": func() error { return c.AssignTopic(ctx, "a b", bad) },
		"Seek topic":        func() error { return c.Seek("..", 0, bad) },
		"Seek partition":    func() error { return c.Seek("t", -2, bad) },
	} {
		err := call()
		require.Error(t, err, name)
		require.NotErrorIs(t, err, consumer.ErrInvalidOffset, name)
		if name == "Assign partition" || name == "Seek partition" {
			require.ErrorIs(t, err, api.ErrUnknownTopicOrPartition, name)
		} else {
			require.ErrorIs(t, err, api.ErrInvalidTopic, name)
		}
	}
	require.Empty(t, c.Assigned())
}
