package producer_test

import (
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// afterFuncCtx is a ctx that may end (it never does here) and counts the
// context.AfterFunc registrations on it that are neither run nor
// stopped: context.AfterFunc calls a parent's own AfterFunc method.
type afterFuncCtx struct {
	done chan struct{}
	mu   sync.Mutex
	live int
}

func newAfterFuncCtx() *afterFuncCtx { return &afterFuncCtx{done: make(chan struct{})} }

func (c *afterFuncCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (c *afterFuncCtx) Done() <-chan struct{}       { return c.done }
func (c *afterFuncCtx) Err() error                  { return nil }
func (c *afterFuncCtx) Value(any) any               { return nil }

func (c *afterFuncCtx) AfterFunc(func()) func() bool {
	c.mu.Lock()
	c.live++
	c.mu.Unlock()
	var once sync.Once
	return func() bool {
		stopped := false
		once.Do(func() {
			c.mu.Lock()
			c.live--
			c.mu.Unlock()
			stopped = true
		})
		return stopped
	}
}

func (c *afterFuncCtx) registered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// A lingering batch watches its records' ctxs (context.AfterFunc); the
// batches Close fails stop watching them too. Else the application's
// ctx, as long as it lives, kept the closed producer (each watch's
// function holds its partition, and so the producer), and ran that
// function on a goroutine of its own once it ended, after Close had
// returned. Both a lingering batch and a full one in the queue.
func TestReview28CloseStopsWatchingCtxs(t *testing.T) {
	c, g := gatedClient(newBroker(t, runneltest.Topic("t", 1)))
	defer g.release()
	p, err := producer.New(c, producer.DefaultTopic("t"), producer.BatchMaxBytes(200),
		producer.Linger(time.Hour), producer.DeliveryTimeout(2*time.Hour))
	require.NoError(t, err)
	ctx := newAfterFuncCtx()
	out := newOutcome()
	// Three batches of two: the first sent, held at the gate, the
	// second full and queued behind it, the third lingering.
	in := make([]*record.Record, 6)
	for i := range in {
		in[i] = &record.Record{Value: make([]byte, 60)}
		p.Produce(ctx, in[i], out.promise())
	}
	<-g.entered
	require.Positive(t, ctx.registered(), "the test's premise: the lingering batches watch the ctx")
	require.NoError(t, p.Close())
	out.wait()
	for _, r := range in {
		require.ErrorIs(t, out.err(r), producer.ErrClosed)
	}
	require.Zero(t, ctx.registered(), "watches left on the ctx of records Close failed")
}
