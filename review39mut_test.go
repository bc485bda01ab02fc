package runnel

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// review39CloseResult is what a Close returned, and whether the handler
// was done with its line when it did.
type review39CloseResult struct {
	err         error
	handlerDone bool
}

// review39AwaitInStack waits until n goroutines' stacks hold part, and
// fails should one of closes receive meanwhile (a Close that returned
// where it was to wait); bounded at 10 s, to turn a hang into a failure.
func review39AwaitInStack(t *testing.T, part string, n int, closes ...chan review39CloseResult) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(string(buf[:runtime.Stack(buf, true)]), part) < n; runtime.Gosched() {
		for _, c := range closes {
			if len(c) > 0 {
				t.Fatalf("a Close returned while the handler still ran (before %d goroutines were in %s)", n, part)
			}
		}
		require.False(t, time.Now().After(deadline), "no %d goroutines in %s", n, part)
	}
}

// TestReview39SecondCloseWaitsForTheGoroutinesLines: a second Close,
// called while the first waits for the lines the broker's goroutines
// hand on (the maintenance's "deleting segment", its handler still
// running), returns only once the handler has returned, as the first
// does (Close's doc: a second call returns once the first has closed
// the broker, and no line of the broker's goroutines reaches the handler
// after Close returned). Kills the mutant that drops the second Close's
// waitLines: it returned at once, the handler still running.
func TestReview39SecondCloseWaitsForTheGoroutinesLines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	m := holdMaintenanceInHandler(t)
	defer m.release() // before goleak's check, should the test fail
	b := m.b
	first, second := make(chan review39CloseResult, 1), make(chan review39CloseResult, 1)
	closeInto := func(c chan review39CloseResult) {
		err := b.Close()
		c <- review39CloseResult{err, m.handlerDone.Load()}
	}
	go closeInto(first)
	review39AwaitInStack(t, "runnel.(*Broker).waitLines(", 1, first)
	go closeInto(second)
	review39AwaitInStack(t, "runnel.(*Broker).waitLines(", 2, first, second)
	m.release()
	for _, c := range []chan review39CloseResult{first, second} {
		r := <-c
		require.NoError(t, r.err)
		require.True(t, r.handlerDone, "a Close returned while the handler still ran")
	}
	m.afterClose.Store(true)
	requireMaintenanceGone(t, m.ops)
}

// TestReview39CloseCancelsUnderBgMu: a goroutine of the broker's starts
// (syncLater, the maintenance's resume) under bgMu, having found the
// broker open there, and is counted in wg before it lets bgMu go; Close,
// having marked the broker closed, cancels its ctx and waits for wg only
// once it has taken bgMu, so that such a start is counted before Close
// waits, and none starts afterwards. With bgMu held by the test (a
// goroutine starting), Close waits for it and leaves the ctx alone; once
// the start is counted and bgMu let go, Close waits for the goroutine.
// Kills the mutant that cancels without bgMu: Close cancelled the ctx
// and went on to wait for wg (and close the logs) while the start was
// under way, which then counted a goroutine Close no longer waited for.
func TestReview39CloseCancelsUnderBgMu(t *testing.T) {
	b := open(t, Config{})
	b.bgMu.Lock() // a goroutine starting, having found the broker open
	unlock := sync.OnceFunc(b.bgMu.Unlock)
	defer unlock()
	require.False(t, b.closed.Load())
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		require.NoError(t, b.ctx.Err(), "Close cancelled the broker's ctx while a goroutine's start held bgMu")
		if goroutineWith(buf, "runnel.(*Broker).Close(", "sync.(*Mutex).Lock") {
			break
		}
		require.False(t, time.Now().After(deadline), "Close did not wait for bgMu")
	}
	b.wg.Add(1) // the start, counted
	unlock()
	for deadline := time.Now().Add(10 * time.Second); !goroutineWith(buf, "runnel.(*Broker).Close(", "sync.(*WaitGroup).Wait"); runtime.Gosched() {
		require.Empty(t, closed, "Close returned with a goroutine of the broker's counted")
		require.False(t, time.Now().After(deadline), "Close did not wait for wg")
	}
	require.Error(t, b.ctx.Err(), "Close waits for wg with the ctx cancelled")
	b.wg.Done()
	require.NoError(t, <-closed)
}

// TestReview39LoggerMayCallTheBrokerOnACreatedPartitionsLine: the lines
// of the logs CreatePartitions opens ("log created") reach the handler
// once the call has given the admin token back, as a CreateTopic's do
// (TestReview34LoggerMayCallTheBrokerOnLogCreated): the handler may call
// an admin method on them. Kills the mutant that opens the new
// partitions with the plain log options (their lines were handed on
// under the token: the handler's CreateTopic blocked, callBounded's
// 10 s).
func TestReview39LoggerMayCallTheBrokerOnACreatedPartitionsLine(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	var callErr atomic.Pointer[error]
	h := onceOnLine("log created", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		callErr.Store(&err)
	})
	b = open(t, Config{Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	h.armed.Store(true) // the next "log created": partition 1's
	require.NoError(t, b.CreatePartitions(ctx, "t", 2))
	require.True(t, h.seen.Load(), "no \"log created\" line from CreatePartitions")
	require.True(t, h.returned.Load(), "CreateTopic from the handler of a created partition's line blocked")
	require.NoError(t, *callErr.Load())
}
