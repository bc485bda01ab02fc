package producer_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// slowClient takes d to answer each produce request (one at a time:
// MaxInFlight(1)), and a nanosecond more for each request before it.
type slowClient struct {
	*clockedClient
	d time.Duration
	n atomic.Int64
}

// requestTime is how long a request takes: d, and k ns for the request
// numbered k (from 0), so that no two requests are acknowledged at the
// same instant (which of two goroutines woken at one instant runs first
// is not known, and a partition's goroutine decides whether to wait for
// an acknowledgement itself by the requests in flight).
func requestTime(d time.Duration, k int64) time.Duration { return d + time.Duration(k) }

func (c *slowClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	t := time.NewTimer(requestTime(c.d, c.n.Add(1)-1))
	defer t.Stop()
	select {
	case <-t.C:
		return c.clockedClient.Produce(ctx, req)
	case <-ctx.Done():
		return api.ProduceResponse{}, ctx.Err()
	}
}

// lingerEvent is a step of a linger scenario: a record produced (with a
// ctx cancelled at cancel, if not zero), or a Flush begun.
type lingerEvent struct {
	at     time.Duration
	rec    int // -1 for a Flush
	cancel time.Duration
}

// lingerModel computes when each record's promise runs and whether its
// ctx's error is its outcome, and when each Flush returns, for a producer
// with MaxInFlight(inFlight) whose requests take requestTime: with 1, a
// call to Produce that returns after it; with more, an AsyncClient whose
// append is at once and whose acknowledgement comes that long after it. A batch not
// acknowledged by dt after it opened fails then (ErrDeliveryTimeout, its
// records reported in expired), its request cut short.
//
// A batch opens with its first record and takes up to per records; one
// that has per when another comes is full, and waits in the queue, not
// lingering. The partition's goroutine takes the first full batch, or
// the open one once its linger passed, a Flush runs, or the ctx of one
// of its records ended, as soon as it is free; it appends the batch once
// fewer than inFlight requests wait for their acknowledgement, without
// the records whose ctx ended by then (a batch of those only is not
// sent: its promises run once the requests before it are done). A
// request alone in flight with nothing buffered behind it, or any with
// inFlight 1, holds the goroutine until its acknowledgement; others are
// acknowledged in order while it goes on. All times differ (see
// TestSynctestLingerModel), so that no two steps tie but as ordered here.
func lingerModel(evs []lingerEvent, linger, d, dt time.Duration, per, inFlight int) (done []time.Duration, canceled, expired []bool, flushes []time.Duration) {
	const never = time.Duration(1<<63 - 1)
	nrec := 0
	for _, e := range evs {
		if e.rec >= 0 {
			nrec++
		}
	}
	done, canceled, expired = make([]time.Duration, nrec), make([]bool, nrec), make([]bool, nrec)
	cancelAt := make([]time.Duration, nrec)
	type batch struct {
		recs    []int
		created time.Duration
		at      time.Duration // queued, when full
	}
	type request struct {
		recs    []int
		ackAt   time.Duration // or the deadline
		expired bool
		held    bool // the partition's goroutine waits for it
	}
	var (
		open        []int // records of the open batch
		opened      time.Duration
		trigger     = never // when the open batch stops lingering
		queue       []batch
		requests    []request // in flight, oldest first
		taken       *batch    // the batch the goroutine holds, waiting for a place
		settling    []int     // the dropped batch the goroutine holds, waiting for no request in flight
		held        bool      // the goroutine waits for requests[len-1]
		sent        int64     // requests made
		outstanding int
		flushing    []int // the Flushes waiting, by index
	)
	complete := func(recs []int, now time.Duration) {
		for _, r := range recs {
			done[r] = now
			outstanding--
		}
	}
	// drop marks the records of b whose ctx ended by now, and returns
	// those left.
	drop := func(b []int, now time.Duration) (live []int) {
		for _, r := range b {
			if cancelAt[r] != 0 && cancelAt[r] <= now {
				canceled[r] = true
			} else {
				live = append(live, r)
			}
		}
		return live
	}
	// appendNow appends the batch the goroutine has taken, if it may.
	appendNow := func(now time.Duration) {
		if len(requests) >= inFlight {
			return
		}
		b := taken
		taken = nil
		if drop(b.recs, now) == nil {
			if len(requests) == 0 {
				complete(b.recs, now)
			} else {
				settling = b.recs
			}
			return
		}
		alone := inFlight == 1 || len(requests) == 0 && open == nil && queue == nil
		deadline := b.created + dt
		ack := now + requestTime(d, sent)
		sent++
		requests = append(requests, request{b.recs, min(ack, deadline), ack > deadline, alone})
		held = alone
	}
	var now time.Duration
	for next := 0; ; {
		actAt := never // the goroutine takes a batch
		if !held && taken == nil && settling == nil {
			switch {
			case queue != nil:
				actAt = max(queue[0].at, now)
			case open != nil:
				actAt = max(trigger, now)
			}
		}
		ackAt := never
		if len(requests) > 0 {
			ackAt = requests[0].ackAt
		}
		evAt := never
		if next < len(evs) {
			evAt = evs[next].at
		}
		now = min(ackAt, actAt, evAt)
		if now == never {
			return done, canceled, expired, flushes
		}
		switch {
		case now == ackAt:
			r := requests[0]
			requests = requests[1:]
			if r.expired {
				for _, rec := range r.recs {
					expired[rec] = !canceled[rec]
				}
			}
			complete(r.recs, now)
			if r.held {
				held = false
			}
			if taken != nil {
				appendNow(now)
			}
			if settling != nil && len(requests) == 0 {
				complete(settling, now)
				settling = nil
			}
		case now == actAt:
			if queue != nil {
				taken = &queue[0]
				if queue = queue[1:]; len(queue) == 0 {
					queue = nil
				}
			} else {
				taken = &batch{recs: open, created: opened}
				open, trigger = nil, never
			}
			if drop(taken.recs, now) == nil {
				// Dropped before it waits for a place.
				b := taken.recs
				taken = nil
				if len(requests) == 0 {
					complete(b, now)
				} else {
					settling = b
				}
			} else {
				appendNow(now)
			}
		default:
			e := evs[next]
			next++
			switch {
			case e.rec < 0:
				flushing = append(flushing, len(flushes))
				flushes = append(flushes, -1)
				if open != nil {
					trigger = min(trigger, now)
				}
			case e.at == e.cancel: // the record's cancel (see below)
				if slices.Contains(open, e.rec) {
					trigger = min(trigger, now)
				}
			default:
				r := e.rec
				cancelAt[r] = e.cancel
				outstanding++
				if len(open) == per {
					queue = append(queue, batch{open, opened, now})
					open = nil
				}
				if open == nil {
					opened = now
					trigger = now + linger
					if len(flushing) > 0 {
						trigger = now
					}
				}
				open = append(open, r)
			}
		}
		if outstanding == 0 {
			for _, f := range flushing {
				flushes[f] = now
			}
			flushing = nil
		}
	}
}

// delayedAck is an acknowledgement that comes at a time.
type delayedAck struct{ at time.Time }

func (a delayedAck) Wait(ctx context.Context) error {
	t := time.NewTimer(time.Until(a.at))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ackLater appends at once and acknowledges requestTime later.
type ackLater struct {
	*clockedClient
	d time.Duration
	n atomic.Int64
}

func (c *ackLater) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	resp, ack, err := c.clockedClient.ProduceAsync(ctx, req)
	if err == nil && ack != nil {
		err = ack.Wait(ctx) // in memory: at once
	}
	if err != nil {
		return resp, nil, err
	}
	return resp, delayedAck{time.Now().Add(requestTime(c.d, c.n.Add(1)-1))}, nil
}

// A model of Linger on the fake clock: records produced at random
// times, some with a ctx cancelled later, and Flushes, into batches of a
// few records at most, against a broker that takes a few milliseconds a
// request — each seed twice: with MaxInFlight(1), a call to Produce that
// takes them; with 2 to 4, an acknowledgement that comes that long after
// an append at once (see lingerModel) — every promise runs, and every
// Flush returns, at the very nanosecond the model says.
func TestSynctestLingerModel(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_LINGER_MODEL_SEEDS", 100, 20, func(t *testing.T, seed uint64) {
		rng := rand.New(rand.NewPCG(seed, 22))
		// Events on whole milliseconds; linger and the request's time
		// off them by 10 µs and 1 µs, so that no two steps tie but as
		// the model says.
		linger := time.Duration(20+rng.IntN(60))*time.Millisecond + 10*time.Microsecond
		d := time.Duration(rng.IntN(8))*time.Millisecond + time.Microsecond
		ms := rng.Perm(600)[:40]
		var evs []lingerEvent
		nrec := 0
		for k, m := range ms {
			at := time.Duration(m+1) * time.Millisecond
			if k%10 == 9 {
				evs = append(evs, lingerEvent{at: at, rec: -1})
				continue
			}
			e := lingerEvent{at: at, rec: nrec}
			nrec++
			if rng.IntN(4) == 0 {
				e.cancel = at + time.Duration(1+rng.IntN(120))*time.Millisecond + 100*time.Microsecond
				evs = append(evs, lingerEvent{at: e.cancel, rec: e.rec, cancel: e.cancel})
			}
			evs = append(evs, e)
		}
		slices.SortFunc(evs, func(a, b lingerEvent) int { return int(a.at - b.at) })
		// Batches of per records at most: the size of a record in a
		// batch varies with its timestamp's delta, by a byte, and per
		// such records fit in max bytes where per+1 never do. A batch of
		// per records keeps room for the smallest record (nil key and
		// value), so that it is full only when another comes, as the
		// model has it (one without that room is full at once, and does
		// not linger: TestSynctestFullBatchDoesNotLinger).
		per := 1 + rng.IntN(4)
		value := make([]byte, 20)
		small, large := record.RecordSize(0, 0, nil, value, nil), record.RecordSize(1<<20, 63, nil, value, nil)
		maxBytes := record.HeaderSize + per*large + record.RecordSize(0, int64(per), nil, nil, nil)
		require.Less(t, maxBytes, record.HeaderSize+(per+1)*small)
		// A delivery timeout a little longer than the linger, so that
		// some batches miss it (off the other times by 300 µs).
		dt := linger + time.Duration(rng.IntN(12))*time.Millisecond + 300*time.Microsecond
		for _, inFlight := range []int{1, 2 + rng.IntN(3)} {
			runLingerModel(t, evs, nrec, linger, d, dt, per, maxBytes, value, inFlight)
		}
		if rng.IntN(4) == 0 { // and without a linger
			runLingerModel(t, evs, nrec, 0, d, dt-linger, per, maxBytes, value, 1+rng.IntN(4))
		}
	})
}

// runLingerModel runs the events of a linger scenario against a producer
// with MaxInFlight(inFlight) inside a bubble, and checks each promise and
// Flush against lingerModel's times.
func runLingerModel(t *testing.T, evs []lingerEvent, nrec int, linger, d, dt time.Duration, per, maxBytes int, value []byte, inFlight int) {
	wantDone, wantCanceled, wantExpired, wantFlushes := lingerModel(evs, linger, d, dt, per, inFlight)
	synctest.Test(t, func(t *testing.T) {
		var c producer.Client = &slowClient{clockedClient: bubbleBroker(t), d: d}
		if inFlight > 1 {
			c = &ackLater{clockedClient: c.(*slowClient).clockedClient, d: d}
		}
		p, err := producer.New(c, producer.Linger(linger), producer.DeliveryTimeout(dt), producer.MaxInFlight(inFlight), producer.BatchMaxBytes(maxBytes))
		require.NoError(t, err)
		defer p.Close()
		t0 := time.Now()
		type out struct {
			at  time.Duration
			err error
		}
		outs := make([]chan out, nrec)
		cancels := make([]context.CancelFunc, nrec)
		var flushed []chan time.Duration
		for _, e := range evs {
			time.Sleep(time.Until(t0.Add(e.at)))
			switch {
			case e.rec < 0:
				ch := make(chan time.Duration, 1)
				flushed = append(flushed, ch)
				go func() {
					if err := p.Flush(context.Background()); err != nil {
						t.Errorf("Flush: %v", err)
					}
					ch <- time.Since(t0)
				}()
			case e.at == e.cancel:
				cancels[e.rec]()
			default:
				ctx := context.Background()
				if e.cancel != 0 {
					ctx, cancels[e.rec] = context.WithCancel(ctx)
				}
				ch := make(chan out, 1)
				outs[e.rec] = ch
				p.Produce(ctx, &record.Record{Topic: "t", Value: value}, func(_ *record.Record, err error) {
					ch <- out{time.Since(t0), err}
				})
			}
		}
		got := make([]out, len(outs))
		ok := true
		for r, ch := range outs {
			got[r] = <-ch
			ok = ok && got[r].at == wantDone[r]
		}
		if !ok { // the scenario, to see where the model and the producer part
			for _, e := range evs {
				t.Logf("event at %v: record %d (-1: Flush), cancel at %v", e.at, e.rec, e.cancel)
			}
			for _, at := range c.(interface{ sent() []time.Time }).sent() {
				t.Logf("request at %v", at.Sub(t0))
			}
			for r, o := range got {
				t.Logf("record %d: done at %v (%v), model %v", r, o.at, o.err, wantDone[r])
			}
		}
		for r, o := range got {
			require.Equal(t, wantDone[r], o.at, "record %d (linger %v, request %v, delivery timeout %v, %d in flight, %d a batch)", r, linger, d, dt, inFlight, per)
			switch {
			case wantCanceled[r]:
				require.ErrorIs(t, o.err, context.Canceled, "record %d", r)
			case wantExpired[r]:
				require.ErrorIs(t, o.err, producer.ErrDeliveryTimeout, "record %d", r)
			default:
				require.NoError(t, o.err, "record %d", r)
			}
		}
		for i, ch := range flushed {
			require.Equal(t, wantFlushes[i], <-ch, "flush %d", i)
		}
		for _, cancel := range cancels {
			if cancel != nil {
				cancel()
			}
		}
	})
}
