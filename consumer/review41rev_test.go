package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"github.com/runnel/runnel/record"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// A zero Consumer is closed (Consumer's doc), and a closed consumer's
// Records loop ends without an error, whether or not its ctx has ended
// too (Records' doc, TestReview41RecordsYieldsCtxErrorLast): a zero
// Consumer's loop yields nothing either, also with an ended ctx, as a
// consumer closed by Close yields nothing.
func TestReview41ZeroConsumerRecordsCtxEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := openBroker(t, map[string]int{"t": 1})
	closed := newConsumer(t, b)
	require.NoError(t, closed.Close())
	for name, c := range map[string]*consumer.Consumer{"closed by Close": closed, "zero": {}} {
		var got []error
		for r, err := range c.Records(ctx) {
			require.Nil(t, r)
			got = append(got, err)
		}
		require.Empty(t, got, "%s: a closed consumer's loop ends without an error", name)
	}
}

// A ctx that ends with a cause (context.WithCancelCause,
// WithDeadlineCause) ends a Records loop with ctx.Err() — context.Canceled
// or context.DeadlineExceeded, not the cause — once and last, before the
// call or during the long poll, and Poll with that ctx returns the same
// error: Records' doc says it yields what Poll returns then.
func TestReview41CtxCauseYieldsCtxErr(t *testing.T) {
	cause := errors.New("the cause")
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 3)...)
	for _, tc := range []struct {
		name   string
		during bool // ctx ends while the loop's fetch waits, else before the call
		ctx    func() (context.Context, func())
		want   error
	}{
		{"cancel cause before", false, func() (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(context.Background())
			cancel(cause)
			return ctx, func() {}
		}, context.Canceled},
		{"deadline cause before", false, func() (context.Context, func()) {
			return context.WithDeadlineCause(context.Background(), time.Now().Add(-time.Second), cause)
		}, context.DeadlineExceeded},
		{"cancel cause during the wait", true, func() (context.Context, func()) {
			ctx, cancel := context.WithCancelCause(context.Background())
			return ctx, func() { cancel(cause) }
		}, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := newSignalClient(b)
			c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.End()))
			ctx, end := tc.ctx()
			defer end()
			done := async(func() []string { return yields(ctx, c, nil) })
			if tc.during {
				recv(t, sc.fetching)
				end()
			}
			require.Equal(t, []string{"err: " + tc.want.Error()}, recv(t, done))
			require.ErrorIs(t, context.Cause(ctx), cause, "the test's ctx has its cause")
			require.Equal(t, tc.want, ctx.Err())
			_, err := c.Poll(ctx)
			require.Equal(t, tc.want, err, "Poll returns ctx.Err() too")
			for _, err := range c.Records(ctx) {
				require.Equal(t, ctx.Err(), err, "the very error value Poll returns")
			}
		})
	}
}

// A loop body that cancels the loop's ctx and then panics ends the loop
// as a panic does: the panic goes on to the caller and nothing more is
// yielded (neither a record nor ctx's error, which would be a yield after
// the body's panic); the record in hand counts as yielded, nothing else
// was taken. A body that panics when handed ctx's error gets nothing more
// either. The consumer goes on from where the loop was.
func TestReview41CtxEndsThenBodyPanics(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))

	run := func(body func(ctx context.Context, cancel func(), r *record.Record, err error)) (got []string, recovered any) {
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		defer func() { recovered = recover() }()
		for r, err := range c.Records(ctx) {
			if err != nil {
				got = append(got, "err: "+err.Error())
			} else {
				got = append(got, string(r.Value))
			}
			body(ctx, cancel, r, err)
		}
		return got, nil
	}

	got, p := run(func(_ context.Context, cancel func(), r *record.Record, _ error) {
		if r != nil && string(r.Value) == "v1" {
			cancel()
			panic("body")
		}
	})
	require.Equal(t, "body", p)
	require.Equal(t, []string{"v0", "v1"}, got, "nothing after the panic")
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 2, pos, "v1 counts as yielded, nothing after it was taken")

	got, p = run(func(_ context.Context, cancel func(), r *record.Record, err error) {
		if r != nil && string(r.Value) == "v2" {
			cancel()
		}
		if err != nil {
			panic("at ctx's error")
		}
	})
	require.Equal(t, "at ctx's error", p)
	require.Equal(t, []string{"v2", "err: context canceled"}, got)
	pos, _ = c.Position("t", 0)
	require.EqualValues(t, 3, pos)
	require.Equal(t, seq("v", 3, 2), vals(readN(t, c, 2)), "nothing lost")
}

// A loop whose ctx ends in the body of the last record before one that
// does not decode yields ctx's error, not the decoding error, and leaves
// the position at the bad record: the next loop reports it (nothing is
// lost), as a *PartitionError matching record.ErrCorrupt.
func TestReview41CtxEndsBeforeDecodingError(t *testing.T) {
	data := batchAt(t, 0, "a", "b")
	data[len(data)-1] = 2 // "b" announces a header that is not there
	record.Batch(data).UpdateCRC()
	var n atomic.Int32
	c := newConsumer(t, serve(t, 2, data, &n), consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	got := yields(ctx, c, func(int) { cancel() })
	require.Equal(t, []string{"a", "err: context canceled"}, got)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 1, pos, "at the bad record")
	for r, err := range c.Records(testCtx(t)) {
		require.Nil(t, r)
		require.ErrorIs(t, err, record.ErrCorrupt)
		var pe *consumer.PartitionError
		require.ErrorAs(t, err, &pe)
		require.EqualValues(t, 1, pe.Offset)
		break
	}
}

// A Close and a cancel of the loop's ctx that race (from other goroutines,
// while the loop body runs or while its fetch waits) end the loop either
// way: with ctx's error, once and last, or — the Close seen first —
// without an error; never with another error, twice, or with a record
// after ctx's error. Nothing is taken that was not yielded.
func TestReview41CloseRacesCtxEnd(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 50)...)
	rounds := 200
	if testing.Short() {
		rounds = 50
	}
	ended := map[string]int{}
	for i := range rounds {
		inBody := i%2 == 0
		sc := newSignalClient(b)
		c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour), consumer.FetchMaxBytes(1)) // one batch a fetch
		at := consumer.At(0)
		if !inBody {
			at = consumer.End()
		}
		require.NoError(t, c.Assign("t", 0, at))
		ctx, cancel := context.WithCancel(testCtx(t))
		var wg sync.WaitGroup
		race := func() {
			start := make(chan struct{})
			wg.Add(2)
			go func() { defer wg.Done(); <-start; cancel() }()
			go func() {
				defer wg.Done()
				<-start
				if err := c.Close(); err != nil {
					t.Error(err)
				}
			}()
			close(start)
		}
		var got []string
		var errs []error
		taken := 0
		done := async(func() bool {
			for r, err := range c.Records(ctx) {
				if len(errs) > 0 {
					got = append(got, fmt.Sprintf("yielded (%v, %v) after ctx's error", r, err))
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
				taken++
				if taken == 2 && inBody {
					race() // the body goes on meanwhile
				}
			}
			return true
		})
		if !inBody {
			recv(t, sc.fetching)
			race()
		}
		recv(t, done)
		wg.Wait()
		cancel()
		require.Empty(t, got)
		switch {
		case len(errs) == 0:
			ended["no error"]++
		case len(errs) == 1 && errs[0] == context.Canceled:
			ended["ctx's error"]++
		default:
			t.Fatalf("round %d: errors %v", i, errs)
		}
		pos, ok := c.Position("t", 0)
		if inBody {
			require.True(t, ok)
			require.EqualValues(t, taken, pos, "round %d: taken only as yielded", i)
		}
	}
	t.Logf("ends: %v", ended)
}
