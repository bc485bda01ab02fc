package consumer_test

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// reentrantHandler's line, a Logger's handler (testkit.LineFunc), calls
// the consumer at each line (call: asks for a partition's position, as a
// handler that adds it to the consumer's log lines would, or pauses the
// partition).
type reentrantHandler struct {
	c       atomic.Pointer[consumer.Consumer]
	call    func(*consumer.Consumer)
	lines   atomic.Int32
	blocked atomic.Bool // a Position call did not return (bounded wait: a hang guard)
}

func (h *reentrantHandler) line(slog.Record) {
	if c := h.c.Load(); c != nil {
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			h.call(c)
		}()
		select {
		case <-returned:
		case <-time.After(wait / 4):
			// Blocked on the lock the logging call holds: give up, so
			// that the test fails rather than hangs (the goroutine
			// returns once the lock is released).
			h.blocked.Store(true)
		}
	}
	h.lines.Add(1)
}

// TestReview33LoggerMayCallTheConsumer: the consumer logged its resets
// and partition errors while it held its lock, so a Logger whose handler
// called back into the consumer (Position, Lag, Pause, Close) deadlocked
// the Poll that logged, and every call after it.
func TestReview33LoggerMayCallTheConsumer(t *testing.T) {
	t.Run("Position", func(t *testing.T) {
		testLoggerCalls(t, func(c *consumer.Consumer) { c.Position("t", 0) })
	})
	t.Run("Pause and Resume", func(t *testing.T) {
		tp := api.TopicPartition{Topic: "t", Partition: 0}
		testLoggerCalls(t, func(c *consumer.Consumer) { c.Pause(tp); c.Resume(tp) })
	})
}

func testLoggerCalls(t *testing.T, call func(*consumer.Consumer)) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, "a", "b")
	h := &reentrantHandler{call: call}
	c := newConsumer(t, b, consumer.Logger(slog.New(testkit.LineFunc(h.line))), consumer.FetchMaxWait(time.Millisecond))
	h.c.Store(c)
	require.NoError(t, c.Assign("t", 0, consumer.At(9))) // past the end: a reset, logged
	var got []string
	for len(got) < 2 {
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		for r := range fs.Records() {
			got = append(got, string(r.Value))
		}
		require.False(t, h.blocked.Load(), "the handler's Position call blocked: the consumer logs holding its lock")
	}
	require.Equal(t, []string{"a", "b"}, got)
	require.Positive(t, h.lines.Load())
}

// closingHandler's line closes the consumer at its first line, from the
// goroutine of the Poll that logs it.
type closingHandler struct {
	c      atomic.Pointer[consumer.Consumer]
	closed chan error
}

func (h *closingHandler) line(slog.Record) {
	if c := h.c.Swap(nil); c != nil {
		h.closed <- c.Close()
	}
}

// TestReview33LoggerMayCloseTheConsumer: a handler that closes the
// consumer when it logs a reset (an application that stops on any
// partition error, say) closes it, and the Poll returns; Close, which
// waited for the lock that Poll held while it logged, returns at once
// there, as it does from a Client's method (see Close).
func TestReview33LoggerMayCloseTheConsumer(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	values(t, b, "t", 0, "a")
	h := &closingHandler{closed: make(chan error, 1)}
	c := newConsumer(t, b, consumer.Logger(slog.New(testkit.LineFunc(h.line))), consumer.FetchMaxWait(time.Millisecond))
	h.c.Store(c)
	require.NoError(t, c.Assign("t", 0, consumer.At(9))) // past the end: a reset, logged
	_, err := c.Poll(testCtx(t))
	if err != nil {
		require.ErrorIs(t, err, consumer.ErrClosed)
	}
	require.NoError(t, recv(t, h.closed))
	_, err = c.Poll(testCtx(t))
	require.ErrorIs(t, err, consumer.ErrClosed)
}
