package producer

import (
	"fmt"
	"sync"
	"time"

	"github.com/runnel/runnel/api"
)

// pipeline keeps several requests of one partition in flight with an
// AsyncClient: the partition's goroutine appends a batch, hands its
// acknowledgement to the pipeline's goroutine (the acker), and goes on to
// the next batch while the acker waits (for the fsync, on one node) and
// completes the batches in the order they were appended.
//
// Promise order: the partition's goroutine completes a batch itself only
// when nothing is in flight (it waits for the acker first: see idle), so
// a partition's promises never run out of order, nor two at once.
type pipeline struct {
	client AsyncClient
	max    int // requests in flight at most: MaxInFlight

	mu   sync.Mutex
	cond sync.Cond // signalled when n drops
	n    int       // requests appended and not yet completed

	// Owned by the partition's goroutine.
	items chan inflight // to the acker, oldest first; nil when it is not running
	done  chan struct{} // closed when the acker ends
}

// inflight is a batch the broker has appended, waiting for its
// acknowledgement (ack, nil when there is none) before it is complete.
type inflight struct {
	b    *batch
	resp api.ProduceResponse
	ack  api.Ack
}

func newPipeline(c AsyncClient, max int) *pipeline {
	pl := &pipeline{client: c, max: max}
	pl.cond.L = &pl.mu
	return pl
}

// acquire takes a place for a request, waiting while max are in flight,
// and reports whether it waited. The wait ends: the acker completes every
// request by its delivery deadline, or at once after Close.
func (pl *pipeline) acquire() (waited bool) {
	pl.mu.Lock()
	for pl.n >= pl.max {
		waited = true
		pl.cond.Wait()
	}
	pl.n++
	pl.mu.Unlock()
	return waited
}

// release gives a request's place back, and reports whether none is in
// flight now.
func (pl *pipeline) release() (idle bool) {
	pl.mu.Lock()
	pl.n--
	idle = pl.n == 0
	pl.cond.Broadcast()
	pl.mu.Unlock()
	return idle
}

// alone reports whether the caller's request (acquired) is the only one
// in flight.
func (pl *pipeline) alone() bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.n == 1
}

// idle waits until no request is in flight. Like busy and running, it
// takes a nil pipeline (a partition without one) as one with nothing in
// flight.
func (pl *pipeline) idle() {
	if pl == nil {
		return
	}
	pl.mu.Lock()
	for pl.n > 0 {
		pl.cond.Wait()
	}
	pl.mu.Unlock()
}

// busy reports whether a request is in flight.
func (pl *pipeline) busy() bool {
	if pl == nil {
		return false
	}
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.n > 0
}

// running reports whether the acker runs.
func (pl *pipeline) running() bool { return pl != nil && pl.items != nil }

// stop waits for the requests in flight and ends the acker.
func (pl *pipeline) stop() {
	if pl.items == nil {
		return
	}
	close(pl.items)
	<-pl.done
	pl.items, pl.done = nil, nil
}

// delivered takes a batch the broker has appended (its place acquired).
// Without a request before it in flight, a batch with nothing to wait for
// completes at once, and so does one whose acknowledgement the partition's
// goroutine would only wait for with nothing else to send (as without a
// pipeline: no hand-off to another goroutine to wake), unless it left
// full (batch.filled: its successor is likely on its way, and should not
// wait for this acknowledgement). Otherwise the
// acker takes it, started if need be, and the partition's goroutine goes
// on.
func (pp *partition) delivered(it inflight, dl *deadlines) {
	pl := pp.pipe
	if pl.alone() && (it.ack == nil || !it.b.filled && !pp.buffered()) {
		pp.complete(it, dl)
		pl.release()
		return
	}
	if pl.items == nil {
		items, done := make(chan inflight, min(pl.max, maxAckQueue)), make(chan struct{})
		if !pp.p.spawn(func() { pp.ack(items, done) }) {
			// Closed: nobody to hand it to, and nothing before it.
			pp.complete(it, dl)
			pl.release()
			return
		}
		pl.items, pl.done = items, done
	}
	// Blocks only past maxAckQueue in flight (MaxInFlight above it,
	// without idempotence), until the acker takes the oldest: it never
	// waits for this goroutine.
	pl.items <- it
}

// maxAckQueue bounds the hand-off queue to the acker, whose buffer would
// otherwise be as large as MaxInFlight, which without idempotence has no
// bound of its own.
const maxAckQueue = 64

// buffered reports whether the partition has records waiting to be sent,
// or one on its way: a Produce whose record filled the open batch (or
// found none) queues that batch and wakes the partition's goroutine
// before a KIP-480 partitioner, told of the new batch, places the record
// (see placing), most likely here, in a new batch.
func (pp *partition) buffered() bool {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	return pp.cur != nil || len(pp.queue) > 0 || pp.placing > 0
}

// ack is the acker: it completes the batches of items in order until
// items is closed.
func (pp *partition) ack(items <-chan inflight, done chan<- struct{}) {
	defer close(done)
	dl := deadlines{parent: pp.p.ctx}
	defer dl.close()
	for it := range items {
		pp.complete(it, &dl)
		if pp.pipe.release() {
			pp.wakeUp() // it may wait for the last request (see drain)
		}
	}
}

// complete waits for an appended batch's acknowledgement, until the
// batch's delivery deadline, and completes its records. A failed wait
// fails the batch for good: it is in the log (under the sequence numbers
// it took), and the broker would answer a retry as a duplicate. Its
// error matches ErrMaybeWritten then, whatever the wait's error is (the
// log's fsync failed, or a Client of your own answered with an error
// that reads as a refusal), but for ErrDeliveryTimeout and ErrClosed,
// which say so already.
func (pp *partition) complete(it inflight, dl *deadlines) {
	p, b := pp.p, it.b
	if it.ack != nil {
		ctx := dl.start(p.deadlineOf(b))
		err := it.ack.Wait(ctx)
		expired := err != nil && ctx.Err() != nil && p.ctx.Err() == nil
		dl.stop()
		if err != nil {
			pp.noteRefusal(err) // KAFKA_STORAGE_ERROR: the fsync failed, the log is fenced; or the leader moved
			switch {
			case expired:
				err = timeoutError(b, p.cfg.deliveryTimeout, fmt.Errorf("appended, not acknowledged by the deadline (%v)", err))
			case p.closed.Load():
				err = closedError(err)
			default:
				err = appended(notCtx(err))
			}
			pp.logFailure("batch failed", err, "records", len(b.recs), "attempts", b.attempts)
			pp.fail(b, err)
			return
		}
	}
	pp.succeed(b, it.resp)
}

// deadlineOf is when a batch must be delivered.
func (p *Producer) deadlineOf(b *batch) time.Time { return b.created.Add(p.cfg.deliveryTimeout) }
