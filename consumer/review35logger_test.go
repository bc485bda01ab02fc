package consumer_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview35LoggerInARecordsLoop: Logger says the handler runs on the
// goroutine of the call that logs, a Records loop's too, holding none of
// the consumer's locks, so that it may call the consumer's methods. A
// handler that asks for the position, the lag and the assignments (each
// bounded at 10 s), then closes the consumer, on a reset logged inside a
// Records loop: every call returns, and the loop ends, with ErrClosed or
// not.
func TestReview35LoggerInARecordsLoop(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, "a", "b")
	var c atomic.Pointer[consumer.Consumer]
	var lines atomic.Int32
	blocked := make(chan string, 4)
	closed := make(chan error, 1)
	handler := testkit.LineFunc(func(r slog.Record) {
		cc := c.Load()
		if cc == nil || lines.Add(1) != 1 {
			return
		}
		for name, call := range map[string]func(){
			"Position": func() { cc.Position("t", 0) },
			"Lag":      func() { cc.Lag("t", 0) },
			"Assigned": func() { cc.Assigned() },
		} {
			if !bounded(call) {
				blocked <- name
			}
		}
		// On the handler's goroutine, the Records loop's: Close waits
		// for no call but this one's (see Close); the loop's end, below,
		// bounds it.
		closed <- cc.Close()
	})
	cons := newConsumer(t, b, consumer.Logger(slog.New(handler)), consumer.FetchMaxWait(time.Millisecond))
	c.Store(cons)
	require.NoError(t, cons.Assign("t", 0, consumer.At(9))) // past the end: a reset, logged
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ended := make(chan error, 1)
	go func() {
		var last error
		for _, err := range cons.Records(ctx) {
			if err != nil {
				last = err
				break
			}
		}
		ended <- last
	}()
	select {
	case err := <-ended:
		if err != nil && !errors.Is(err, consumer.ErrClosed) {
			t.Fatalf("the Records loop ended with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the Records loop did not end")
	}
	select {
	case name := <-blocked:
		t.Fatalf("%s from the handler blocked", name)
	default:
	}
	require.NoError(t, <-closed)
	require.Positive(t, lines.Load())
}

// bounded runs call, and reports whether it returned within 10 s.
func bounded(call func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); call() }()
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}
