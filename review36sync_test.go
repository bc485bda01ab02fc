package runnel

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// gateClock is the system clock, except that one Now while armed blocks
// until resumed, holding whatever lock its caller holds (a log's mu, in
// a roll): it sends on paused, then waits for resume to be closed.
type gateClock struct {
	armed          atomic.Bool
	paused, resume chan struct{}
}

func newGateClock() *gateClock {
	return &gateClock{paused: make(chan struct{}), resume: make(chan struct{})}
}

func (c *gateClock) Now() time.Time {
	if c.armed.CompareAndSwap(true, false) {
		c.paused <- struct{}{}
		<-c.resume
	}
	return time.Now()
}

// pausedRoll opens a broker of cfg on a gateClock (its Clock), creates
// topic t of one partition and appends a batch whose fsync the append
// waits for (ack), then calls arm with the broker (to arm a handler, say)
// and starts a roll of the partition's log (log.Log.Roll, a caller no
// holder count covers), which it returns paused holding the log's mu:
// the roll goes on once clock.resume is closed, and sends its error on
// rolled.
func pausedRoll(t *testing.T, cfg Config, arm func(*Broker)) (b *Broker, ack *produceAck, clock *gateClock, rolled <-chan error) {
	t.Helper()
	ctx := context.Background()
	clock = newGateClock()
	cfg.Clock = clock
	b = open(t, cfg)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, a, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "a")})
	require.NoError(t, err)
	require.NotNil(t, a, "the append waits for its fsync")
	p, err := b.partition(ctx, "t", 0, false)
	require.NoError(t, err)
	if arm != nil {
		arm(b)
	}
	clock.armed.Store(true)
	r := make(chan error, 1)
	go func() { r <- p.Log().Roll() }()
	<-clock.paused // the roll holds the log's mu
	return b, a.(*produceAck), clock, r
}

// TestReview36LoggerMayCloseOnASyncLaterLine: a handler may call Close on
// a line that the goroutine of syncLater hands on (the broker's own
// fsync of an append whose producer stopped waiting), and another
// goroutine's Close returns while that goroutine waits in the handler.
// On the bare memory FS that goroutine runs the fsync round itself
// (log.syncTo runs it inline), and at the round's end it hands on the
// lines that other calls of the log logged during the round: they stay
// queued while the round is counted among the log's holders.
//
// The rig makes that deterministic: a roll of the partition's log, made
// through the log (log.Log.Roll, a caller no holder count covers), holds
// the log's mu, paused in the clock's Now (gateClock); meanwhile
// syncLater's goroutine starts its round, which waits for mu; the roll
// then logs "rolled segment" and releases mu, leaving the line to the
// round, whose goroutine hands it on once the round is done. (With a
// Produce that rolls the same happens when its own hand-on finds mu held
// by the round: a race the rig spares.) syncLater is called as
// Broker.wait calls it when a Produce's ctx ends while it waits for
// someone else's round.
//
// Afterwards the goroutine has ended, and the append is durable (Close
// fsynced it, if the round had not). Each wait is bounded at 10 s, to
// turn a deadlock into a failure. Another goroutine's Close, which the
// handler starts, returns once the handler has (see
// TestReview36CloseWaitsForItsGoroutinesLines). On the old code wg
// counted the goroutine while it handed lines on: the handler's Close
// waited in wg.Wait for the goroutine it ran on, and the test's bound
// gave up.
func TestReview36LoggerMayCloseOnASyncLaterLine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name    string
		handler bool // the handler closes the broker
		other   bool // another goroutine does, which the handler starts
	}{
		{name: "the handler's Close", handler: true},
		{name: "another goroutine's Close", other: true},
		{name: "the handler's Close and another at once", handler: true, other: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			var b *Broker
			var errs [2]atomic.Pointer[error]
			var handlerDone atomic.Bool
			other := make(chan bool, 1) // whether the handler was done when the other Close returned
			h := onceOnLineDirect("rolled segment", func() {
				if tc.other {
					go func() {
						err := b.Close()
						errs[1].Store(&err)
						other <- handlerDone.Load()
					}()
				}
				if tc.handler {
					err := b.Close()
					errs[0].Store(&err)
				}
				handlerDone.Store(true)
			})
			_, ack, clock, rolled := pausedRoll(t, Config{Logger: h.logger()}, func(ob *Broker) { // the bare memory FS
				b = ob
				h.armed.Store(true)
			})
			b.syncLater(ack.d)
			waitForStack(t, "runnel.(*Broker).syncLater.func1(", "log.(*Log).syncOnce(")
			close(clock.resume)
			require.NoError(t, <-rolled)

			select {
			case <-h.done:
			case <-time.After(20 * time.Second):
				t.Fatal(`no "rolled segment" line came, or Close from its handler blocked`)
			}
			if tc.other {
				select {
				case done := <-other:
					require.True(t, done, "the other Close returned while the handler ran")
				case <-time.After(10 * time.Second):
					t.Fatal("the other Close blocked")
				}
			}
			for i, want := range []bool{tc.handler, tc.other} {
				if want {
					require.NotNil(t, errs[i].Load())
					require.NoError(t, *errs[i].Load())
				}
			}
			waitForNoStack(t, "runnel.(*Broker).syncLater.func1(")
			require.NoError(t, ack.Wait(ctx), "the append is fsynced")
		})
	}
}
