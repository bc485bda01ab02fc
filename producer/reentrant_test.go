package producer_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A Flush called from a promise waits for that promise's own batch, which
// cannot be done until the promise returns: the Flush must end when Close
// begins (ErrClosed, as Flush documents), not hold the partition's
// goroutine, and with it Close, for ever.
func TestCloseEndsAFlushInAPromise(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p, err := producer.New(b, producer.DefaultTopic("t"))
	require.NoError(t, err)
	ctx := testCtx(t)
	flushed := make(chan error, 1)
	p.Produce(ctx, value("v"), func(*record.Record, error) {
		flushed <- p.Flush(context.Background())
	})
	waitForGoroutine(t, ctx, "[select]", "producer.(*Producer).Flush")
	closed := make(chan struct{})
	go func() {
		p.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close waits for a promise that waits in Flush")
	}
	require.ErrorIs(t, <-flushed, producer.ErrClosed)
}

// waitForGoroutine waits until a goroutine's stack, its header line
// included, holds every one of parts (it waits at that point), failing
// the test if ctx ends first.
func waitForGoroutine(t *testing.T, ctx context.Context, parts ...string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
	next:
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			for _, part := range parts {
				if !strings.Contains(g, part) {
					continue next
				}
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no goroutine waits in %q", parts)
		case <-time.After(time.Millisecond):
		}
	}
}
