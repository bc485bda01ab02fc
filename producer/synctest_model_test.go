package producer_test

import (
	"context"
	"math/rand/v2"
	"slices"
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
// MaxInFlight(1)).
type slowClient struct {
	*clockedClient
	d time.Duration
}

func (c *slowClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	time.Sleep(c.d)
	return c.clockedClient.Produce(ctx, req)
}

// lingerEvent is a step of a linger scenario: a record produced (with a
// ctx cancelled at cancel, if not zero), or a Flush begun.
type lingerEvent struct {
	at     time.Duration
	rec    int // -1 for a Flush
	cancel time.Duration
}

// lingerModel computes when each record's promise runs and whether its
// ctx's error is its outcome, and when each Flush returns: a batch opens
// with its first record and takes up to per records; one that has per
// when another comes is full, and waits in the queue, not lingering; the
// open batch is sent once the partition's goroutine is free (the request
// before it answered, the full batches sent) and its linger passed, a
// Flush runs, or the ctx of one of its records ended; records whose ctx
// ended by then are dropped (a batch of dropped records only is not
// sent); a request takes d. All times differ (see
// TestSynctestLingerModel), so no two steps tie but a request's answer
// and the next batch's send.
func lingerModel(evs []lingerEvent, linger, d time.Duration, per int) (done []time.Duration, canceled []bool, flushes []time.Duration) {
	const never = time.Duration(1<<63 - 1)
	nrec := 0
	for _, e := range evs {
		if e.rec >= 0 {
			nrec++
		}
	}
	done, canceled = make([]time.Duration, nrec), make([]bool, nrec)
	cancelAt := make([]time.Duration, nrec)
	type full struct {
		recs []int
		at   time.Duration // queued
	}
	var (
		open        []int   // records of the open batch
		trigger     = never // when the open batch stops lingering
		queue       []full
		busyUntil   time.Duration
		inFlight    []int
		outstanding int
		flushing    []int // the Flushes waiting, by index
	)
	for next := 0; ; {
		sendAt := never
		switch {
		case queue != nil:
			sendAt = max(queue[0].at, busyUntil)
		case open != nil:
			sendAt = max(trigger, busyUntil)
		}
		evAt := never
		if next < len(evs) {
			evAt = evs[next].at
		}
		ackAt := never
		if inFlight != nil {
			ackAt = busyUntil
		}
		now := min(sendAt, evAt, ackAt)
		if now == never {
			return done, canceled, flushes
		}
		switch {
		case now == ackAt: // before a send at the same instant
			for _, r := range inFlight {
				done[r] = now
				outstanding--
			}
			inFlight = nil
		case now == sendAt:
			var b []int
			if queue != nil {
				b = queue[0].recs
				if queue = queue[1:]; len(queue) == 0 {
					queue = nil
				}
			} else {
				b = open
				open, trigger = nil, never
			}
			var live []int
			for _, r := range b {
				if cancelAt[r] != 0 && cancelAt[r] <= now {
					canceled[r] = true
				} else {
					live = append(live, r)
				}
			}
			if live == nil {
				for _, r := range b {
					done[r] = now
					outstanding--
				}
			} else {
				inFlight, busyUntil = b, now+d
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
					queue = append(queue, full{open, now})
					open = nil
				}
				if open == nil {
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

// A model of Linger on the fake clock: records produced at random
// times, some with a ctx cancelled later, and Flushes, into batches of a
// few records at most, against a broker that takes a few milliseconds a
// request; every promise runs, and every Flush returns, at the very
// nanosecond the model says.
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
		// such records fit in max bytes where per+1 never do.
		per := 1 + rng.IntN(4)
		value := make([]byte, 20)
		small, large := record.RecordSize(0, 0, nil, value, nil), record.RecordSize(1<<20, 63, nil, value, nil)
		maxBytes := record.HeaderSize + per*large
		require.Less(t, maxBytes, record.HeaderSize+(per+1)*small)
		wantDone, wantCanceled, wantFlushes := lingerModel(evs, linger, d, per)

		synctest.Test(t, func(t *testing.T) {
			c := &slowClient{clockedClient: bubbleBroker(t), d: d}
			p, err := producer.New(c, producer.Linger(linger), producer.MaxInFlight(1), producer.BatchMaxBytes(maxBytes))
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
			for r, ch := range outs {
				o := <-ch
				require.Equal(t, wantDone[r], o.at, "record %d (linger %v, request %v)", r, linger, d)
				if wantCanceled[r] {
					require.ErrorIs(t, o.err, context.Canceled, "record %d", r)
				} else {
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
	})
}
