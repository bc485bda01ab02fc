package runnel_test

import (
	"context"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/stretchr/testify/require"
)

// TestAutoCreateErrors: with AutoCreateTopics, Partitions and Produce
// return the errors of the topic's creation that their docs name: ctx's
// error (the creation waits for admin calls) and ErrInvalidTopic for a
// name CreateTopic refuses though Kafka's rules allow it.
func TestAutoCreateErrors(t *testing.T) {
	b, err := runnel.Open(runnel.Config{AutoCreateTopics: true})
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = b.Partitions(ctx, "orders")
	require.ErrorIs(t, err, context.Canceled)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "orders", Acks: api.AcksAll})
	require.ErrorIs(t, err, context.Canceled)
	_, err = b.Partitions(context.Background(), "CON")
	require.ErrorIs(t, err, runnel.ErrInvalidTopic)
	require.Empty(t, b.Topics())
}
