package producer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// afterFuncPanicCtx is a ctx of the application's own, never done, whose
// AfterFunc method (which context.AfterFunc calls) panics.
type afterFuncPanicCtx struct{ done chan struct{} }

func (afterFuncPanicCtx) Deadline() (time.Time, bool)         { return time.Time{}, false }
func (c afterFuncPanicCtx) Done() <-chan struct{}             { return c.done }
func (afterFuncPanicCtx) Err() error                          { return nil }
func (afterFuncPanicCtx) Value(any) any                       { return nil }
func (afterFuncPanicCtx) AfterFunc(func()) (stop func() bool) { panic("AfterFunc") }

// TestWatchPanickingCtx: while batches linger, a record's ctx that may
// end is watched (batch.watch: context.AfterFunc) under the partition's
// lock. A ctx of the application's whose AfterFunc method panicked left
// that lock held: every later record of the partition, its goroutine and
// Close waited for ever. On the hot path the record's buffer space was
// lost too. Now the panic goes on to the Produce's caller as a
// partitioner's does (see placeRecord): the lock released, the record
// given back as it was, with its space, and the partition goes on. The
// record comes first to its topic (a batch opened for it), or joins the
// open batch on the hot path (no key) or under the topic's lock (a key).
// (A ctx's panic in the look-up of the topic's partition count, in
// context.WithCancel, came holding no lock, and went on so already.)
func TestWatchPanickingCtx(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before bool   // a record of context.Background opens the batch first
		key    []byte // the records'
	}{
		{"first", false, nil},
		{"hot", true, nil},
		{"keyed", true, []byte("k")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(&manyClient{n: 1}, Linger(time.Minute))
			require.NoError(t, err)
			defer p.Close()
			ctx := context.Background()
			var errs []error
			promise := func(_ *record.Record, err error) { errs = append(errs, err) } // run by Flush's time
			// Its partition count known (a look-up under the ctx would
			// panic first, in context.WithCancel, holding no lock).
			_, err = p.topic(ctx, "t", true)
			require.NoError(t, err)
			if tc.before {
				p.Produce(ctx, &record.Record{Topic: "t", Key: tc.key, Value: []byte("a")}, promise)
				require.Equal(t, int64(1), p.BufferedRecords())
			}
			bufBytes := p.BufferedBytes()

			pp := (*p.knownTopic("t").parts.Load())[0]
			var held heldLock
			defer held.release() // before the deferred Close
			r := &record.Record{Topic: "t", Key: tc.key, Value: []byte("b")}
			func() {
				defer func() {
					v := recover()
					held.note(&pp.mu)
					require.Equal(t, "AfterFunc", v, "the ctx's panic goes on to Produce's caller")
				}()
				p.Produce(afterFuncPanicCtx{done: make(chan struct{})}, r, func(*record.Record, error) {
					t.Error("the promise of a record whose Produce panicked ran")
				})
			}()
			require.False(t, held.held(), "the partition's lock left held")
			require.Equal(t, int64(btoi(tc.before)), p.BufferedRecords(), "the record left counted as buffered")
			require.Equal(t, bufBytes, p.BufferedBytes(), "the record's bytes left counted as buffered")
			require.True(t, r.Timestamp.IsZero(), "the record not given back as it was")

			// The partition goes on.
			flushed := make(chan error, 1)
			go func() {
				p.Produce(ctx, &record.Record{Topic: "t", Key: tc.key, Value: []byte("c")}, promise)
				flushed <- p.Flush(ctx)
			}()
			require.NoError(t, testkit.Await(t, flushed, "Produce and Flush after the panic"))
			require.Len(t, errs, 1+btoi(tc.before))
			for _, err := range errs {
				require.NoError(t, err)
			}
			require.Zero(t, p.BufferedRecords())
		})
	}
}

// heldLock is a lock that a Produce which panicked (a bug) may have
// left held, noted right after the panic (note) and released by a
// deferred release, deferred after Close: so that a failed assertion
// ends the test at once, where Close, deferred, waited for ever for the
// partition's goroutine, itself waiting for the lock.
type heldLock struct{ mu *sync.Mutex }

// note notes whether mu is held: it must not be, nobody else taking it
// then (the partition's goroutine lingers).
func (h *heldLock) note(mu *sync.Mutex) {
	if mu.TryLock() {
		mu.Unlock()
		h.mu = nil
		return
	}
	h.mu = mu
}

// held reports whether the lock noted last was held.
func (h *heldLock) held() bool { return h.mu != nil }

// release releases the lock noted held, if any.
func (h *heldLock) release() {
	if h.mu != nil {
		h.mu.Unlock()
		h.mu = nil
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// batchState is what of a partition's open batch a record added and
// taken out again (unaddLocked) could have changed.
type batchState struct {
	cur               *batch
	recs, ctxs, stops int
	bytes             int64
	size              int
	firstTs           int64
	created           time.Time
	watched           <-chan struct{}
	hot, filled       bool
	draining, idle    bool
	queued            int
	spare             *batch
	bufRecs, bufBytes int64
	slotRec, slotCtx  bool // the slots past recs and ctxs hold nothing
}

func batchStateOf(p *Producer, pp *partition) batchState {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	s := batchState{cur: pp.cur, draining: pp.draining, idle: pp.idle, queued: len(pp.queue), spare: pp.spare,
		bufRecs: p.BufferedRecords(), bufBytes: p.BufferedBytes(), slotRec: true, slotCtx: true}
	if b := pp.cur; b != nil {
		s.recs, s.ctxs, s.stops = len(b.recs), len(b.ctxs), len(b.stops)
		s.bytes, s.size, s.firstTs, s.created = b.bytes, b.size, b.firstTs, b.created
		s.watched, s.hot, s.filled = b.watched, b.hot, b.filled
		if len(b.recs) < cap(b.recs) {
			slot := b.recs[:len(b.recs)+1][len(b.recs)]
			s.slotRec = slot.r == nil && slot.promise == nil
		}
		if len(b.ctxs) < cap(b.ctxs) {
			s.slotCtx = b.ctxs[:len(b.ctxs)+1][len(b.ctxs)] == recCtx{}
		}
	}
	return s
}

// TestWatchPanickingCtxLeavesNoTrace: a record whose ctx's AfterFunc
// method panicked (see TestWatchPanickingCtx) leaves its partition as it
// found it: the open batch's records, ctxs, bytes and size (by which the
// next records fit or not), its first timestamp and the ctx it watches
// last, no batch opened for it, the buffer counted as before; nor does
// the batch keep the record referenced. The record is given back as it
// was, its topic (the default) and zero timestamp with its Location
// unset again, on the hot path too, where produce stamped them. A second
// record of the same ctx is watched (and panics) as the first was: the
// batch does not count that ctx as watched. The batch holds a record of
// a ctx that may end before (hot, keyed), so that its ctxs and the ctx
// it watches are not empty, and that ctx, ended, still ends the linger.
func TestWatchPanickingCtxLeavesNoTrace(t *testing.T) {
	zero := time.Time{}.In(time.FixedZone("UTC+1", 3600))
	for _, tc := range []struct {
		name   string
		before bool   // records of context.Background and of a ctx that may end open the batch first
		key    []byte // the records'
	}{
		{"first", false, nil},
		{"hot", true, nil},
		{"keyed", true, []byte("k")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := New(&manyClient{n: 1}, Linger(time.Hour), DeliveryTimeout(2*time.Hour), DefaultTopic("t"))
			require.NoError(t, err)
			defer p.Close()
			ctx := context.Background()
			_, err = p.topic(ctx, "t", true)
			require.NoError(t, err)
			pp := (*p.knownTopic("t").parts.Load())[0]
			outcomes := make(chan error, 4)
			promise := func(_ *record.Record, err error) { outcomes <- err }
			cctx, cancel := context.WithCancel(ctx)
			defer cancel()
			if tc.before {
				p.Produce(ctx, &record.Record{Key: tc.key, Value: []byte("a")}, promise)
				p.Produce(cctx, &record.Record{Key: tc.key, Value: []byte("bb")}, promise)
			}
			before := batchStateOf(p, pp)
			require.Equal(t, tc.before && tc.key == nil, before.hot, "the batch marked hot")

			panicking := afterFuncPanicCtx{done: make(chan struct{})}
			var held heldLock
			defer held.release() // before the deferred Close
			for i := range 2 {
				r := &record.Record{Key: tc.key, Value: []byte("ccc"), Timestamp: zero}
				func() {
					defer func() {
						v := recover()
						held.note(&pp.mu)
						require.Equal(t, "AfterFunc", v, "Produce %d of the ctx: its panic goes on", i+1)
					}()
					p.Produce(panicking, r, func(*record.Record, error) {
						t.Error("the promise of a record whose Produce panicked ran")
					})
				}()
				require.False(t, held.held(), "Produce %d of the ctx: the partition's lock left held", i+1)
				require.Empty(t, r.Topic, "the record's topic not given back")
				require.Equal(t, zero, r.Timestamp, "the record's timestamp not given back")
				require.Equal(t, "UTC+1", r.Timestamp.Location().String(), "the Location of the record's zero timestamp not given back")
				require.Equal(t, before, batchStateOf(p, pp), "Produce %d of the ctx", i+1)
			}

			if tc.before {
				// The watched ctx ends the linger still: a's batch goes
				// now (the linger is an hour), bb fails with its error.
				cancel()
				require.NoError(t, testkit.Await(t, outcomes, "record a's outcome"))
				require.ErrorIs(t, testkit.Await(t, outcomes, "record bb's outcome"), context.Canceled)
			}
			p.Produce(ctx, &record.Record{Key: tc.key, Value: []byte("d")}, promise)
			require.NoError(t, p.Flush(ctx))
			require.NoError(t, testkit.Await(t, outcomes, "record d's outcome"))
			require.Zero(t, p.BufferedRecords())
			require.Zero(t, p.BufferedBytes())
		})
	}
}

// TestHotPathWatchesANewCtxWithoutTheTopicsLock: a record without a key
// whose ctx the sticky partition's lingering batch does not watch yet
// joins that batch on the hot path all the same, as before produce's own
// try declined it (see addHot): placeRecord tries the hot path again,
// watching the ctx, and does not wait for the topic's lock. Its ctx is
// watched: ended, it ends the linger.
func TestHotPathWatchesANewCtxWithoutTheTopicsLock(t *testing.T) {
	p, err := New(&manyClient{n: 1}, Linger(time.Hour), DeliveryTimeout(2*time.Hour))
	require.NoError(t, err)
	defer p.Close()
	ctx := context.Background()
	outcomes := make(chan error, 2)
	promise := func(_ *record.Record, err error) { outcomes <- err }
	p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("a")}, promise) // opens the batch, marked hot
	ts := p.knownTopic("t")
	require.NotNil(t, ts.hot.Load(), "no batch marked hot")

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ts.mu.Lock()
	locked := true
	defer func() {
		if locked {
			ts.mu.Unlock()
		}
	}()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		p.Produce(cctx, &record.Record{Topic: "t", Value: []byte("b")}, promise)
	}()
	testkit.Await(t, produced, "the Produce of a record of a new ctx, the topic's lock held")
	locked = false
	ts.mu.Unlock()
	require.Equal(t, int64(2), p.BufferedRecords())

	cancel()
	require.NoError(t, testkit.Await(t, outcomes, "record a's outcome"))
	require.ErrorIs(t, testkit.Await(t, outcomes, "record b's outcome"), context.Canceled)
	// The batch frees its space once its promises have returned: after
	// Flush, not yet as the last promise sends (see BufferedRecords).
	require.NoError(t, p.Flush(ctx))
	require.Zero(t, p.BufferedRecords())
}
