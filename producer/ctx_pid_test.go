package producer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A record's ctx governs it until its batch is first sent (see Produce):
// one whose ctx ends while its batch waits for the producer id (the
// first batch of an idempotent producer, its InitProducerID slow to
// answer) is dropped from the batch and fails with ctx's error, never
// written, as one whose ctx ends while the batch waits for a place among
// the requests in flight is. The record produced after it, waiting
// behind it, is written at the first offset with the first sequence
// number: the dropped record's numbers were given back.
func TestCtxEndingWhileWaitingForTheProducerID(t *testing.T) {
	for _, inFlight := range []int{1, 5} {
		t.Run(fmt.Sprint("MaxInFlight=", inFlight), func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			c := &hookClient{b: b}
			entered, release := make(chan struct{}), make(chan struct{})
			c.initHook = func(int) error {
				close(entered)
				<-release
				return nil
			}
			p := newProducer(t, c, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight))
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			got := make(chan error, 1)
			dropped := &record.Record{Value: []byte("cancelled")}
			p.Produce(ctx, dropped, func(_ *record.Record, err error) { got <- err })
			testkit.AwaitHold(t, entered, got, "the Produce") // its batch waits for the producer id

			kept := &record.Record{Value: []byte("kept")}
			done := make(chan error, 1)
			go func() { done <- p.ProduceSync(testCtx(t), kept) }()
			cancel()
			close(release)

			require.ErrorIs(t, testkit.Await(t, got, "the dropped record's promise"), context.Canceled)
			require.NoError(t, testkit.Await(t, done, "ProduceSync's answer"))
			require.Equal(t, []string{"kept"}, values(readRecords(t, b, "t", 0)))
			require.Zero(t, kept.Offset)
			require.Zero(t, kept.Sequence)
		})
	}
}
