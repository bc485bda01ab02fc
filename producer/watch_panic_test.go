package producer

import (
	"context"
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

			r := &record.Record{Topic: "t", Key: tc.key, Value: []byte("b")}
			func() {
				defer func() { require.Equal(t, "AfterFunc", recover(), "the ctx's panic goes on to Produce's caller") }()
				p.Produce(afterFuncPanicCtx{done: make(chan struct{})}, r, func(*record.Record, error) {
					t.Error("the promise of a record whose Produce panicked ran")
				})
			}()
			pp := (*p.knownTopic("t").parts.Load())[0]
			require.True(t, pp.mu.TryLock(), "the partition's lock left held")
			pp.mu.Unlock()
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

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
