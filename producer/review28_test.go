package producer_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
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

// countClient is a broker whose Partitions answers go through a hook.
type countClient struct {
	*runnel.Broker
	mu   sync.Mutex
	hook func(ctx context.Context, topic string, next func() (int, error)) (int, error)
}

func (c *countClient) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	next := func() (int, error) { return c.Broker.Partitions(ctx, topic) }
	if hook == nil {
		return next()
	}
	return hook(ctx, topic, next)
}

func (c *countClient) setHook(h func(ctx context.Context, topic string, next func() (int, error)) (int, error)) {
	c.mu.Lock()
	c.hook = h
	c.mu.Unlock()
}

// Two look-ups of a topic's partition count under way at once (two
// records for partitions past the count the producer knows, here) may
// be answered out of order: the answer of the one asked first, read by
// the broker before CreatePartitions, comes after that of the one asked
// next, which saw the new partitions. The older answer must not take the
// topic back to its old count: the record whose look-up it answered is
// for a partition the topic has (as the newer answer says), and is
// delivered, not failed with ErrInvalidPartition; and the partitions
// stay known, so that a record for one is buffered without another
// look-up (keyed records, too, stay spread over them all).
func TestReview28StaleCountAnswerDoesNotShrinkTopic(t *testing.T) {
	// The first look-up reads the count (2), and answers only once let go.
	r := newLookUpRace(t, true)
	require.NoError(t, r.b.CreatePartitions(r.ctx, "t", 4))
	r3 := &record.Record{Partition: 3, Value: []byte("3")}
	require.NoError(t, r.p.ProduceSync(r.ctx, r3)) // its look-up answers 4 at once
	close(r.release)                               // then the first one's answer, 2
	require.NoError(t, <-r.done)
	b, c, p, ctx := r.b, r.c, r.p, r.ctx

	// The producer still knows partition 3: no further look-up.
	c.setHook(func(context.Context, string, func() (int, error)) (int, error) {
		return 0, errors.New("a look-up, though the producer knew the topic's 4 partitions")
	})
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Partition: 3, Value: []byte("3b")}))
	require.Equal(t, []string{"2"}, values(readRecords(t, b, "t", 2)))
	require.Equal(t, []string{"3", "3b"}, values(readRecords(t, b, "t", 3)))
}

// TestReview28NewerCountAnswerOfAnOlderLookUpIsFollowed is the mirror of
// TestReview28StaleCountAnswerDoesNotShrinkTopic: a look-up begun first
// but that reads the count last, after CreatePartitions, answers the
// newer count, and it is followed though a look-up begun later was
// followed before it (with the old count). The count of a topic only
// grows while the topic lives: a larger answer is never the staler one.
func TestReview28NewerCountAnswerOfAnOlderLookUpIsFollowed(t *testing.T) {
	// The first look-up waits before it reads the count.
	r := newLookUpRace(t, false)
	// A second look-up, begun later, reads 2 and is followed first: its
	// record is refused, the topic having 2 partitions then.
	err := r.p.ProduceSync(r.ctx, &record.Record{Partition: 2, Value: []byte("early")})
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	require.NoError(t, r.b.CreatePartitions(r.ctx, "t", 4))
	close(r.release) // the first look-up reads 4 now
	require.NoError(t, <-r.done, "the first look-up's answer (4) is the newer")
	require.Equal(t, []string{"2"}, values(readRecords(t, r.b, "t", 2)))
}

// lookUpRace is a producer of manually partitioned records to topic t,
// of 2 partitions, whose record for partition 2 (done: its ProduceSync's
// error) is under way with its look-up of the count held: the look-up
// reads the count before it is held if readFirst, else once release is
// closed.
type lookUpRace struct {
	b       *runnel.Broker
	c       *countClient
	p       *producer.Producer
	ctx     context.Context
	release chan struct{}
	done    chan error
}

func newLookUpRace(t *testing.T, readFirst bool) *lookUpRace {
	b := newBroker(t, runneltest.Topic("t", 2))
	r := &lookUpRace{b: b, c: &countClient{Broker: b}, ctx: testCtx(t),
		release: make(chan struct{}), done: make(chan error, 1)}
	r.p = newProducer(t, r.c, producer.DefaultTopic("t"), producer.MetadataMaxAge(time.Hour),
		producer.RecordPartitioner(producer.ManualPartitioner()))
	require.NoError(t, r.p.ProduceSync(r.ctx, &record.Record{Value: []byte("0")}))
	held := make(chan struct{})
	var once sync.Once
	r.c.setHook(func(ctx context.Context, topic string, next func() (int, error)) (int, error) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return next()
		}
		var n int
		var err error
		if readFirst {
			n, err = next()
		}
		close(held)
		select {
		case <-r.release:
		case <-ctx.Done():
		}
		if !readFirst {
			n, err = next()
		}
		return n, err
	})
	go func() { r.done <- r.p.ProduceSync(r.ctx, &record.Record{Partition: 2, Value: []byte("2")}) }()
	<-held
	return r
}
