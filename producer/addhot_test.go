package producer

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
)

// TestAddHotIsAdd: addHot, which writes out batch.add's work for a record
// not dropped, leaves the open batch as add leaves a batch of the same
// records (the same size, by which the batch fills, first timestamp,
// buffer bytes and records), at timestamp and offset deltas whose varints
// take one byte and more (past 63 records), with and without headers,
// and declines the record that add declines, one that no longer fits in
// BatchMaxBytes.
func TestAddHotIsAdd(t *testing.T) {
	const max = 8192
	p := stickyProducer(t, 1, BatchMaxBytes(max))
	ctx := healthCtx(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	p.Produce(ctx, &record.Record{Value: []byte("a"), Timestamp: t0}, nil)
	pp := p.knownTopic("t").hot.Load()
	if pp == nil {
		t.Fatal("no hot partition")
	}
	var model batch // add's batch of the same records
	pp.mu.Lock()
	if pp.cur == nil || !pp.cur.hot || len(pp.cur.recs) != 1 {
		pp.mu.Unlock()
		t.Fatal("the first record's batch is not open and marked hot")
	}
	model.add(&pp.cur.recs[0], nil, max)
	pp.mu.Unlock()

	deltas := []time.Duration{0, time.Millisecond, -time.Millisecond, 63 * time.Millisecond, 64 * time.Millisecond,
		-65 * time.Millisecond, 8191 * time.Millisecond, 8192 * time.Millisecond, -time.Hour, 1000 * time.Hour}
	pendingOf := func(r *record.Record) pending {
		body := record.BodySize(r.Key, r.Value, r.Headers)
		return pending{r: r, promise: noPromise, size: int32(record.SizeWithDeltas(body, 0, 0)), body: int32(body)}
	}
	// add (want) and addHot (got) take pr, or both decline it; check
	// compares the batches unless pp's was queued, full.
	try := func(k int, pr pending) (ok bool) {
		t.Helper()
		if !p.tryReserve(int64(pr.size)) { // its space, as produce takes it
			t.Fatal("no buffer space")
		}
		want := pr
		wantOK := model.add(&want, nil, max)
		gotOK := pp.addHot(&pr, nil, nil, false, nil)
		if gotOK != wantOK {
			t.Fatalf("record %d (%d B): addHot took it %v, add %v", k, len(pr.r.Value), gotOK, wantOK)
		}
		if !gotOK {
			p.release(1, int64(pr.size)) // not buffered: its space back
		}
		return gotOK
	}
	check := func(k int) {
		t.Helper()
		pp.mu.Lock()
		b := pp.cur
		if b == nil {
			pp.mu.Unlock()
			t.Fatalf("record %d: the batch is no longer open", k)
		}
		got := [4]int64{int64(b.size), b.firstTs, b.bytes, int64(len(b.recs))}
		same := len(b.recs) == len(model.recs)
		for i := 0; same && i < len(b.recs); i++ {
			same = b.recs[i].r == model.recs[i].r && b.recs[i].size == model.recs[i].size && b.recs[i].body == model.recs[i].body
		}
		pp.mu.Unlock()
		if want := [4]int64{int64(model.size), model.firstTs, model.bytes, int64(len(model.recs))}; got != want || !same {
			t.Fatalf("record %d: addHot's batch (size, first timestamp, bytes, records) %v, add's %v (the same records: %v)", k, got, want, same)
		}
	}
	// fits reports whether r would join the batch, and
	// whether it would leave it full (addHot would queue it, to be sent).
	fits := func(r *record.Record) (ok, full bool) {
		trial := model
		trial.recs = slices.Clip(model.recs) // add appends to a copy
		pr := pendingOf(r)
		ok = trial.add(&pr, nil, max)
		return ok, ok && trial.full(max)
	}
	k := 1
	for ; ; k++ {
		r := &record.Record{Topic: "t", Value: make([]byte, k*37%40), Timestamp: t0.Add(deltas[k%len(deltas)])}
		if k%3 == 1 {
			r.Headers = []record.Header{{Key: "h", Value: make([]byte, k%5)}}
		}
		if ok, full := fits(r); !ok || full {
			break // the limit's turn
		}
		if !try(k, pendingOf(r)) {
			t.Fatalf("record %d: declined before the batch was full", k)
		}
		check(k)
	}
	// At the limit: the largest value that fits, and one byte more,
	// which neither takes.
	r := &record.Record{Topic: "t", Timestamp: t0}
	v := max - model.size
	for ; v >= 0; v-- {
		if r.Value = make([]byte, v); func() bool { ok, _ := fits(r); return ok }() {
			break
		}
	}
	if try(k, pendingOf(&record.Record{Topic: "t", Value: make([]byte, v+1), Timestamp: t0})) {
		t.Fatalf("record %d: %d B, one more than fits, joined the batch", k, v+1)
	}
	check(k)
	if !try(k+1, pendingOf(r)) {
		t.Fatalf("record %d: %d B, the most that fits, declined", k+1, v)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestOpenBatchHoldsLiveRecords: a partition's open batch (cur) holds a
// record at least, and none dropped, which addHot counts on (it sizes a
// record as the batch's second or later, at offset delta len(recs)),
// through a random run of records keyed and not (the hot path), of
// ctxs that end while their batch lingers (its linger ends, the record
// dropped and failed), of ctxs whose AfterFunc panics (the record taken
// out again, the batch it opened dropped), batches that fill and
// flushes. The state is looked at after each step, once the promise of
// a record whose ctx ended has run.
func TestOpenBatchHoldsLiveRecords(t *testing.T) {
	p, err := New(&manyClient{n: 2}, Linger(time.Hour), DeliveryTimeout(2*time.Hour), DefaultTopic("t"), BatchMaxBytes(600))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := healthCtx(t)
	rng := rand.New(rand.NewPCG(7, 7))
	type ended struct {
		cancel context.CancelFunc
		done   chan error
	}
	var ends []ended // records of ctxs that may end, not ended yet
	check := func(step int, what string) {
		t.Helper()
		for i, pp := range *p.knownTopic("t").parts.Load() {
			pp.mu.Lock()
			b := pp.cur
			n, dropped := 0, 0
			if b != nil {
				n, dropped = len(b.recs), b.dropped
				for j := range b.recs {
					if b.recs[j].dropped() {
						dropped++
					}
				}
			}
			pp.mu.Unlock()
			if b != nil && (n == 0 || dropped != 0) {
				t.Fatalf("step %d (%s): partition %d's open batch holds %d records, %d dropped", step, what, i, n, dropped)
			}
		}
	}
	if _, err := p.topic(ctx, "t", true); err != nil {
		t.Fatal(err)
	}
	for step := range 600 {
		r := &record.Record{Value: make([]byte, rng.IntN(120))}
		if rng.IntN(3) == 0 {
			r.Key = []byte{byte(rng.IntN(8))}
		}
		var what string
		switch op := rng.IntN(10); {
		case op < 4:
			what = "produce"
			p.Produce(ctx, r, nil)
		case op < 6:
			what = "produce, a ctx that may end"
			cctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			p.Produce(cctx, r, func(_ *record.Record, err error) { done <- err })
			ends = append(ends, ended{cancel, done})
		case op < 8 && len(ends) > 0:
			what = "a ctx ends"
			k := rng.IntN(len(ends))
			e := ends[k]
			ends = slices.Delete(ends, k, k+1)
			e.cancel()
			testkit.Await(t, e.done, "the outcome of the record whose ctx ended")
		case op < 9:
			what = "produce, a ctx whose AfterFunc panics"
			func() {
				defer func() {
					if v := recover(); v != "AfterFunc" {
						t.Fatalf("step %d: Produce's panic %v, not the ctx's", step, v)
					}
				}()
				p.Produce(afterFuncPanicCtx{done: make(chan struct{})}, r, func(*record.Record, error) {
					t.Error("the promise of a record whose Produce panicked ran")
				})
			}()
		default:
			what = "flush"
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		check(step, what)
	}
	for _, e := range ends {
		e.cancel()
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
