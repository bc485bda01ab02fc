package runnel

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview34ProduceLineNotHandedOnHoldingTheMaintenanceToken:
// Config.Logger lets a handler call Maintain on every line but those of
// a partition's maintenance, which may come holding the maintenance
// token. A Produce's "rolled segment" is not one; but when it is logged
// while a Maintain's own lines are being handed on (here its handler is
// slow), the Produce leaves it to the goroutine handing lines on — the
// Maintain's, which holds the token. A handler calling Maintain on that
// roll then waits for the token its own goroutine holds.
func TestReview34ProduceLineNotHandedOnHoldingTheMaintenanceToken(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	var armed, inRetention, rolled, returned atomic.Bool
	retentionLine := make(chan struct{})
	release := make(chan struct{})
	b = open(t, Config{Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
		if !armed.Load() {
			return
		}
		switch {
		case r.Message == "deleting segment" && !inRetention.Swap(true):
			close(retentionLine)
			select { // a slow handler, on a line of the maintenance
			case <-release:
			case <-time.After(10 * time.Second):
				t.Error("release never came")
			}
		case r.Message == "rolled segment" && !rolled.Swap(true):
			returned.Store(callBounded(func() {
				if err := b.Maintain(ctx); err != nil {
					t.Errorf("Maintain from the handler: %v", err)
				}
			}))
		}
	}))})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, RetentionBytes: 1}}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")
	produce(t, b, "t", 0, "c")
	armed.Store(true)
	maintained := make(chan error, 1)
	go func() { maintained <- b.Maintain(ctx) }()
	select {
	case <-retentionLine:
	case <-time.After(10 * time.Second):
		t.Fatal("Maintain logged no \"deleting segment\"")
	}
	produce(t, b, "t", 0, "d") // rolls: its line comes while the Maintain's handler runs
	close(release)
	require.NoError(t, <-maintained)
	require.True(t, rolled.Load(), "the Produce's roll was never handed on")
	require.True(t, returned.Load(), "Maintain from the handler of a Produce's \"rolled segment\" blocked: the line was handed on holding the maintenance token")
}

// TestReview34HandlerMayCallMaintainOnAMaintenanceLine: the lines of a
// partition's maintenance ("deleting segment" here) are handed on once
// the maintenance token is given back (Config.Logger): a handler may
// call Maintain on them.
func TestReview34HandlerMayCallMaintainOnAMaintenanceLine(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("deleting segment", func() {
		if err := b.Maintain(ctx); err != nil {
			t.Errorf("Maintain from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, RetentionBytes: 1}}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")
	produce(t, b, "t", 0, "c")
	h.armed.Store(true)
	require.NoError(t, b.Maintain(ctx))
	require.True(t, h.seen.Load(), "Maintain logged no \"deleting segment\"")
	require.True(t, h.returned.Load(), "Maintain from the handler of a maintenance line blocked")
}
