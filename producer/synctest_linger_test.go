package producer_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// firstHeldClient holds its first produce request until gate is closed.
type firstHeldClient struct {
	*clockedClient
	gate chan struct{}
	n    int
}

func (c *firstHeldClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.n++ // one request at a time: MaxInFlight(1)
	if c.n == 1 {
		<-c.gate
	}
	return c.clockedClient.Produce(ctx, req)
}

// A record's ctx that ends while its batch waits, full, behind a request
// in flight sends that batch at once (it is no longer lingering), not the
// batch opened after it: that one still lingers its full Linger. The
// partition's "a lingering record's ctx ended" mark was not cleared by
// the batch taken from the queue, and the next open batch, whose records'
// ctxs had not ended, went at once.
func TestSynctestLingerNotCutByQueuedBatchCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &firstHeldClient{clockedClient: bubbleBroker(t), gate: make(chan struct{})}
		const linger = time.Minute
		p, err := producer.New(c, producer.Linger(linger), producer.MaxInFlight(1), producer.BatchMaxBytes(200))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		a := produceAt(t, p, "a")
		time.Sleep(linger + time.Second) // "a" sent at t0+linger, held
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		bch := make(chan timedOutcome, 1)
		p.Produce(ctx, &record.Record{Topic: "t", Value: make([]byte, 100)}, func(r *record.Record, err error) {
			bch <- timedOutcome{time.Now(), err, r}
		})
		cch := make(chan timedOutcome, 1)
		created := time.Now()
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: make([]byte, 100)}, func(r *record.Record, err error) {
			cch <- timedOutcome{time.Now(), err, r}
		}) // does not fit "b"'s batch: opens the next one
		time.Sleep(time.Second)
		cancel()
		time.Sleep(time.Second)
		close(c.gate)
		require.NoError(t, (<-a).err)
		ob := <-bch
		require.ErrorIs(t, ob.err, context.Canceled)
		oc := <-cch
		require.NoError(t, oc.err)
		require.Equal(t, created.Add(linger), oc.at, "the batch opened after the one whose record's ctx ended did not linger")
		// "a" reached the broker once let through; "b"'s batch, emptied, not at all.
		require.Equal(t, []time.Time{t0.Add(linger + 3*time.Second), created.Add(linger)}, c.sent())
	})
}

// slowSticky puts every record in partition 0, and takes a millisecond of
// the bubble's clock to hear of a new batch: the time in which a Produce,
// its record having filled the open batch, has not yet opened the next.
type slowSticky struct{}

func (slowSticky) ForTopic(string) producer.TopicPartitioner { return slowSticky{} }
func (slowSticky) Partition(*record.Record, int) int32       { return 0 }
func (slowSticky) OnNewBatch(int32)                          { time.Sleep(time.Millisecond) }

// A batch appended while the Produce whose record filled it is still
// placing that record (a KIP-480 partitioner is told of the new batch
// first) is not "alone with nothing behind it": the partition's goroutine
// hands its acknowledgement to the acker and appends the next batch
// without waiting for it. It waited for the acknowledgement (an fsync,
// here 100 ms) itself: the record the Produce then added was appended
// only once it came.
func TestSynctestFullBatchNotAloneWhileItsSuccessorIsPlaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ackAfter = 100 * time.Millisecond
		c := &ackLater{clockedClient: bubbleBroker(t), d: ackAfter}
		value := make([]byte, 20)
		p, err := producer.New(c, producer.Linger(time.Second), producer.MaxInFlight(3),
			producer.RecordPartitioner(slowSticky{}),
			// One record a batch, with room left for the smallest record
			// (nil key and value), so that a batch is full only once the
			// next record comes (one without that room is full at once).
			producer.BatchMaxBytes(record.HeaderSize+record.RecordSize(1<<20, 63, nil, value, nil)+record.RecordSize(0, 1, nil, nil, nil)))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		outs := produceSpaced(t, p, value, 3, 10*time.Millisecond)
		// Each record fills the open batch with the one before it: that
		// one goes at once, the last lingers its second.
		want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 20*time.Millisecond + time.Second + time.Millisecond}
		for i, ch := range outs {
			o := <-ch
			require.NoError(t, o.err)
			require.Equal(t, t0.Add(want[i]+requestTime(ackAfter, int64(i))), o.at, "record %d", i)
		}
		require.Equal(t, []time.Time{t0.Add(want[0]), t0.Add(want[1]), t0.Add(want[2])}, c.sent())
	})
}

// After a queued batch's record ctx ended (its mark looked at, and
// cleared, by the open batch's linger), a record of the open batch whose
// ctx ends still cuts that batch's linger, at once: the mark is set again
// by the ctx that ends after the look.
func TestSynctestLingerCutAfterQueuedBatchCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &firstHeldClient{clockedClient: bubbleBroker(t), gate: make(chan struct{})}
		const linger = time.Minute
		p, err := producer.New(c, producer.Linger(linger), producer.MaxInFlight(1), producer.BatchMaxBytes(200))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		a := produceAt(t, p, "a")
		time.Sleep(linger + time.Second) // "a" sent, held
		outcome := func(ctx context.Context, value []byte) <-chan timedOutcome {
			ch := make(chan timedOutcome, 1)
			p.Produce(ctx, &record.Record{Topic: "t", Value: value}, func(r *record.Record, err error) {
				ch <- timedOutcome{time.Now(), err, r}
			})
			return ch
		}
		bctx, bcancel := context.WithCancel(context.Background())
		defer bcancel()
		b := outcome(bctx, make([]byte, 100))
		cctx, ccancel := context.WithCancel(context.Background())
		defer ccancel()
		c1 := outcome(cctx, make([]byte, 100)) // does not fit "b"'s batch: opens the next one
		c2 := outcome(context.Background(), []byte("c2"))
		time.Sleep(time.Second)
		bcancel()
		time.Sleep(time.Second)
		close(c.gate)
		require.NoError(t, (<-a).err)
		require.ErrorIs(t, (<-b).err, context.Canceled)
		time.Sleep(time.Second) // the open batch lingers, its mark cleared
		cut := time.Now()
		ccancel()
		o1, o2 := <-c1, <-c2
		require.ErrorIs(t, o1.err, context.Canceled)
		require.NoError(t, o2.err)
		require.Equal(t, cut, o2.at, "the open batch's record's ctx ended and its linger was not cut")
		// "a" reached the broker once let through; "b"'s batch, emptied,
		// not at all.
		require.Equal(t, []time.Time{t0.Add(linger + 3*time.Second), cut}, c.sent())
	})
}
