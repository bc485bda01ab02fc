package runneltest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview43esProjectionInSynctestBubble: an event-sourcing test in a
// testing/synctest bubble, in memory and on disk: a projection reads the
// events in a goroutine of its own, and after each command's ProduceSync,
// synctest.Wait is enough for the test to see the projection hold the
// event (read-your-writes: a record acknowledged is below the high
// watermark, and a consumer waiting in a fetch is woken). The broker is
// made in the bubble: the package doc now says that one made outside a
// bubble cannot be used inside it (the runtime stops the binary, or the
// bubble's clock stops: which one, the scheduling decides), which it did
// not say; a parent test that shares one broker with synctest subtests
// is a pattern that meets it.
func TestReview43esProjectionInSynctestBubble(t *testing.T) {
	for _, disk := range []bool{false, true} {
		t.Run(fmt.Sprintf("disk=%v", disk), func(t *testing.T) {
			dir := t.TempDir() // t.TempDir's cleanup is not the bubble's
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				cfg := runnel.Config{}
				if disk {
					cfg.Dir = dir
				}
				b := runneltest.NewBroker(t, runneltest.Config(cfg), runneltest.Topic("orders", 3))
				p := runneltest.NewProducer(t, b)
				c := runneltest.NewConsumer(t, b)
				require.NoError(t, c.AssignTopic(ctx, "orders", consumer.Start()))
				events := map[string]int{} // the projection: events per order
				var positions int64
				ctx, cancel := context.WithCancel(ctx)
				done := make(chan error, 1)
				go func() {
					for r, err := range c.Records(ctx) {
						if err != nil {
							if ctx.Err() != nil {
								err = nil
							}
							done <- err
							return
						}
						events[string(r.Key)]++
						positions++
					}
					done <- nil
				}()
				for i := range 20 {
					require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "orders", Key: fmt.Appendf(nil, "order-%d", i%4), Value: []byte("e")}))
					synctest.Wait() // the projection has taken the event, and waits for the next
					require.EqualValues(t, i+1, positions)
				}
				cancel()
				require.NoError(t, <-done)
				require.Equal(t, map[string]int{"order-0": 5, "order-1": 5, "order-2": 5, "order-3": 5}, events)
			})
		})
	}
	src, err := os.ReadFile("runneltest.go")
	require.NoError(t, err)
	_, doc, ok := strings.Cut(string(src), "// # Fake time")
	require.True(t, ok)
	doc, _, _ = strings.Cut(doc, "// # Coming from kfake")
	doc = strings.Join(strings.Fields(strings.ReplaceAll(doc, "//", "")), " ")
	require.Contains(t, doc, "made outside a bubble", "the package doc's Fake time")
	require.Contains(t, doc, "fatal error: select on synctest channel from outside bubble", "the package doc's Fake time")
}
