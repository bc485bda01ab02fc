package consumer_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
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

// TestLoggerMayCallTheConsumer: the consumer logged its resets
// and partition errors while it held its lock, so a Logger whose handler
// called back into the consumer (Position, Lag, Pause, Close) deadlocked
// the Poll that logged, and every call after it.
func TestLoggerMayCallTheConsumer(t *testing.T) {
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

// TestLoggerMayCloseTheConsumer: a handler that closes the
// consumer when it logs a reset (an application that stops on any
// partition error, say) closes it, and the Poll returns; Close, which
// waited for the lock that Poll held while it logged, returns at once
// there, as it does from a Client's method (see Close).
func TestLoggerMayCloseTheConsumer(t *testing.T) {
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

// TestLoggerInARecordsLoop: Logger says the handler runs on the
// goroutine of the call that logs, a Records loop's too, holding none of
// the consumer's locks, so that it may call the consumer's methods. A
// handler that asks for the position, the lag and the assignments (each
// bounded at testkit.HangGuard), then closes the consumer, on a reset logged inside a
// Records loop: every call returns, and the loop ends, with ErrClosed or
// not.
func TestLoggerInARecordsLoop(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
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
	case <-time.After(testkit.HangGuard):
		t.Fatal("the Records loop did not end")
	}
	select {
	case name := <-blocked:
		t.Fatalf("%s from the handler blocked", name)
	default:
	}
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	require.Positive(t, lines.Load())
}

// bounded runs call, and reports whether it returned within
// testkit.HangGuard.
func bounded(call func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); call() }()
	select {
	case <-done:
		return true
	case <-time.After(testkit.HangGuard):
		return false
	}
}

// TestLoggerMayCallTheConsumerAtEveryLine: the Logger's doc says
// its handler holds none of the consumer's locks, so it may call the
// consumer's methods; TestLoggerMayCallTheConsumer checks it for
// an offset reset's line. Here for each other line a Poll logs under the
// consumer's lock: a partition gone (reset once it is back), a partition's
// retriable error, its error that is not, a failed fetch. The handler
// asks for a Position at each line; a call that blocks (bounded) fails
// the test. And a Poll that reports a partition's error has handed on
// the line it logged for it before it returns (a line queued under the
// lock waited for the next call's unlock).
func TestLoggerMayCallTheConsumerAtEveryLine(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault runneltest.Fault
		line  string
	}{
		{"partition gone", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions,
			Err: api.ErrUnknownTopicOrPartition, Count: 1}, "partition gone"},
		{"partition retriable", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions,
			Err: api.ErrNotLeader, Count: 1}, "partition error: retrying"},
		{"partition error", runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.FailPartitions,
			Err: api.ErrPolicyViolation, Count: 1}, "partition error"},
		{"fetch failed", runneltest.Fault{Op: runneltest.OpFetch, Err: api.ErrNotLeader, Count: 1}, "fetch failed"},
		{"look-up failed", runneltest.Fault{Op: runneltest.OpListOffset, Err: api.ErrPolicyViolation, Count: 1}, "partition error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
			values(t, b, "t", 0, "a", "b")
			f := runneltest.NewFaults(t, b)
			f.Add(tc.fault)
			h := &reentrantHandler{call: func(c *consumer.Consumer) { c.Position("t", 0) }}
			var mu sync.Mutex
			var msgs []string
			line := func(r slog.Record) {
				h.line(r)
				mu.Lock()
				msgs = append(msgs, r.Message)
				mu.Unlock()
			}
			logged := func() bool {
				mu.Lock()
				defer mu.Unlock()
				return slicesHasPrefix(msgs, tc.line)
			}
			c := newConsumer(t, f, consumer.Logger(slog.New(testkit.LineFunc(line))),
				consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond))
			h.c.Store(c)
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			for i := 0; !logged(); i++ {
				require.Less(t, i, 100, "no %q line after 100 Polls", tc.line)
				fs, err := c.Poll(testCtx(t))
				require.NoError(t, err)
				require.False(t, h.blocked.Load(), "the handler's Position call blocked: the consumer logs holding its lock")
				if fs.Err() != nil {
					require.True(t, logged(), "the Poll that reported %v returned before its %q line was handed on", fs.Err(), tc.line)
				}
			}
		})
	}
}

// slicesHasPrefix reports whether one of msgs begins with prefix.
func slicesHasPrefix(msgs []string, prefix string) bool {
	for _, m := range msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// TestCloseFromTheLoggerLosesNothing: a Logger's handler that
// closes the consumer at a line of a Poll that has its answer by then
// (one partition's records, and another's reset, logged once the
// positions moved) gets that answer from the Poll, as Close's doc says:
// the records it holds are returned, not lost behind an ErrClosed with
// the position moved past them. Whatever the Poll returns, the records
// it returns end where the position stands.
func TestCloseFromTheLoggerLosesNothing(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 2))
	values(t, b, "t", 0, "a", "b")
	h := &closingHandler{closed: make(chan error, 1)}
	c := newConsumer(t, b, consumer.Logger(slog.New(testkit.LineFunc(h.line))), consumer.FetchMaxWait(time.Millisecond))
	h.c.Store(c)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(9))) // past the end: a reset, logged
	var got []string
	for {
		fs, err := c.Poll(testCtx(t))
		if err != nil {
			require.ErrorIs(t, err, consumer.ErrClosed)
			break
		}
		for r := range fs.Records() {
			got = append(got, string(r.Value))
		}
	}
	require.NoError(t, recv(t, h.closed))
	pos, _ := c.Position("t", 0)
	require.Equal(t, []string{"a", "b"}[:pos], got, "the records before the position, once each")
	require.EqualValues(t, 2, pos, "the Poll that logged the reset read partition 0")
}

// TestLoggerMayCallTheConsumerWhenTheTopicWasReplaced: as
// TestLoggerMayCallTheConsumerAtEveryLine, for the line of a
// position resolved in a topic created again while it was reset
// (TestRecreatedBeforeListOffsetThenOutOfRange's first steps): the
// handler's Position call does not block, and the line is out by the
// time the Poll reports api.ErrUnknownTopicID.
func TestLoggerMayCallTheConsumerWhenTheTopicWasReplaced(t *testing.T) {
	h := &reentrantHandler{call: func(c *consumer.Consumer) { c.Position("t", 0) }}
	var replaced atomic.Bool
	line := func(r slog.Record) {
		h.line(r)
		if strings.HasPrefix(r.Message, "topic created again") {
			replaced.Store(true)
		}
	}
	b, hook, c := readThenOutOfRange(t, consumer.ResetOffset(consumer.ResetEarliest),
		consumer.Logger(slog.New(testkit.LineFunc(line))))
	h.c.Store(c)
	fs, err := c.Poll(testCtx(t)) // out of range: reset
	require.NoError(t, err)
	require.Empty(t, fs)
	hook.beforeNext(func() { recreate(t, b, 4) })
	for i := 0; ; i++ {
		require.Less(t, i, 10, "no ErrUnknownTopicID after 10 Polls")
		fs, err := c.Poll(testCtx(t))
		require.NoError(t, err)
		if err := fs.Err(); err != nil {
			require.ErrorIs(t, err, api.ErrUnknownTopicID)
			break
		}
	}
	require.True(t, replaced.Load(), "the line of the replaced topic, before the Poll returned")
	require.False(t, h.blocked.Load(), "the handler's Position call blocked: the consumer logs holding its lock")
}
