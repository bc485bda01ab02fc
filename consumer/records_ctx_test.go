package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// A zero Consumer is closed (Consumer's doc), and a closed consumer's
// Records loop ends without an error, whether or not its ctx has ended
// too (Records' doc, TestRecordsYieldsCtxErrorLast): a zero
// Consumer's loop yields nothing either, also with an ended ctx, as a
// consumer closed by Close yields nothing. Poll with that ctx returns
// ErrClosed, as every method of a closed consumer does (it returned
// ctx's error).
func TestZeroConsumerRecordsCtxEnded(t *testing.T) {
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
		_, err := c.Poll(ctx)
		require.ErrorIs(t, err, consumer.ErrClosed, name)
	}
}

// A ctx that ends with a cause (context.WithCancelCause,
// WithDeadlineCause) ends a Records loop with ctx.Err() — context.Canceled
// or context.DeadlineExceeded, not the cause — once and last, before the
// call or during the long poll, and Poll with that ctx returns the same
// error: Records' doc says it yields what Poll returns then.
func TestCtxCauseYieldsCtxErr(t *testing.T) {
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
func TestCtxEndsThenBodyPanics(t *testing.T) {
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
func TestCtxEndsBeforeDecodingError(t *testing.T) {
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
func TestCloseRacesCtxEnd(t *testing.T) {
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

// A loop whose ctx ends while it yields the errors a failed Poll brought
// for positions it could not resolve yields ctx's error next — not the
// other errors, nor the Poll's — and keeps the errors it did not yield
// that would not be found again: here those of two partitions whose topic
// (known by its ID, kept through a reset after an offset out of range)
// was found gone when the reset position was looked up, reported once
// (see unreported). The next Poll reports the one not yielded, with the
// fetch's failure. Ended at the last of them, the loop yields ctx's error
// too, rather than the Poll's or nothing.
func TestCtxEndsAmidResolveErrorsKeepsThem(t *testing.T) {
	for _, cancelAt := range []int{1, 2} {
		t.Run(fmt.Sprint("cancel at ", cancelAt), func(t *testing.T) {
			down := errors.New("fetch down")
			id := log.NewTopicID()
			var lists, fetches atomic.Int32
			client := &fakeClient{t: t,
				listOffset: func(_ context.Context, _ string, p int32, _ int64) (api.ListedOffset, error) {
					if lists.Add(1) <= 2 {
						return api.ListedOffset{Offset: 0, TopicID: id}, nil
					}
					return api.ListedOffset{}, api.ErrUnknownTopicOrPartition // the topic is gone
				},
				fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
					if fetches.Add(1) > 1 {
						return api.FetchResponse{}, down
					}
					var resp api.FetchResponse
					for _, p := range req.Partitions {
						fp := api.FetchedPartition{Topic: p.Topic, Partition: p.Partition, TopicID: id, HighWatermark: 0}
						if p.Partition < 2 {
							fp.Err = log.ErrOffsetOutOfRange // reset to the start, its ID kept
						}
						resp.Partitions = append(resp.Partitions, fp)
					}
					return resp, nil
				},
			}
			c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.Start()))
			require.NoError(t, c.Assign("t", 1, consumer.Start()))
			require.NoError(t, c.Assign("t", 2, consumer.At(0))) // fetched: its fetch fails the second Poll
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			var errs []error
			for r, err := range c.Records(ctx) {
				require.Nil(t, r)
				if errs = append(errs, err); len(errs) == cancelAt {
					cancel()
				}
			}
			require.Len(t, errs, cancelAt+1, "%v", errs)
			yielded := map[int32]bool{}
			for _, err := range errs[:cancelAt] {
				require.ErrorIs(t, err, api.ErrUnknownTopicID)
				var pe *consumer.PartitionError
				require.ErrorAs(t, err, &pe)
				yielded[pe.Partition] = true
			}
			require.Equal(t, context.Canceled, errs[cancelAt], "then ctx's error, not another partition's nor the Poll's")

			fs, err := c.Poll(testCtx(t))
			require.ErrorIs(t, err, down)
			if cancelAt == 2 {
				require.Empty(t, fs, "both were yielded")
				return
			}
			require.Len(t, fs, 1, "the error the loop did not yield: %v", fs)
			require.ErrorIs(t, fs[0].Err, api.ErrUnknownTopicID)
			require.False(t, yielded[fs[0].Partition])
		})
	}
}

// A loop body that ends the loop's ctx and breaks out at once — at a
// record, at a partition's error, at an error of a failed Poll — ends the
// loop: Records must not yield ctx's error after the break (a
// range-over-func loop panics when its iterator yields after the body
// returned false), whichever of the break and the end of ctx Records sees
// first.
func TestRecordsYieldsNothingAfterCancelAndBreak(t *testing.T) {
	id := log.NewTopicID()
	for _, at := range []string{"record", "partition error", "resolve error", "Poll error"} {
		t.Run(at, func(t *testing.T) {
			client := &fakeClient{t: t,
				listOffset: func(context.Context, string, int32, int64) (api.ListedOffset, error) {
					return api.ListedOffset{}, errors.New("list offsets down")
				},
				fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
					if at == "resolve error" || at == "Poll error" {
						return api.FetchResponse{}, errors.New("fetch down")
					}
					return abcOr(t, req, id, func(api.FetchPartition) error {
						if at == "partition error" {
							return errors.New("a partition error the table does not know")
						}
						return nil
					}), nil
				},
			}
			c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Hour))
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			if at == "resolve error" { // yielded before the failed Poll's own error
				require.NoError(t, c.Assign("t", 1, consumer.Start()))
			}
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			var got []string
			err := testkit.NoPanic(t, "Records", func() error {
				for r, err := range c.Records(ctx) {
					if err != nil {
						got = append(got, "err")
					} else {
						got = append(got, string(r.Value))
					}
					cancel()
					break
				}
				return nil
			})
			require.NoError(t, err)
			require.Len(t, got, 1, "the break ends the loop: %v", got)
			require.Equal(t, at == "record", got[0] == "a")
		})
	}
}

// A loop whose ctx ends in the body of the last record of a partition's
// fetch yields nothing more of that Poll's fetches but ctx's error: not
// another partition's error fetched with it (Records' doc: it ends at
// once, the rest of the fetch left for the next Poll).
func TestCtxEndsBeforeAnotherPartitionsError(t *testing.T) {
	bad := errors.New("a partition error the table does not know")
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		return abcOr(t, req, log.TopicID{}, func(p api.FetchPartition) error {
			if p.Partition == 1 {
				return bad
			}
			return nil
		}), nil
	}}
	c := newConsumer(t, client, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Hour))
	// The first Poll's request begins with the second partition assigned
	// (partitions take turns at its head): 0, whose records come first.
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	got := yields(ctx, c, func(n int) {
		if n == 3 {
			cancel() // at the fetch's last record: its partition is done
		}
	})
	require.Equal(t, []string{"a", "b", "c", "err: context canceled"}, got)
	pos, _ := c.Position("t", 0)
	require.EqualValues(t, 3, pos)
}

// yields runs a Records loop on c to its end, the body answering true
// (going on) to everything, and returns what it yielded: each record's
// value, or "err: " and the error's text. after, when not nil, runs in
// the body after each record.
func yields(ctx context.Context, c *consumer.Consumer, after func(n int)) []string {
	var out []string
	for r, err := range c.Records(ctx) {
		if err != nil {
			out = append(out, "err: "+err.Error())
			continue
		}
		out = append(out, string(r.Value))
		if after != nil {
			after(len(out))
		}
	}
	return out
}

// When its ctx ends, a Records loop yields ctx's error, once and last,
// and ends, so that a loop cut short by its ctx is not mistaken for one
// that read everything (Records' doc; kgo's fetches report
// context.Canceled, database/sql's Rows.Err ctx's error). It is ctx's
// own error, as Poll returns it: context.Canceled after a cancel,
// context.DeadlineExceeded after a timeout, also when ctx had ended
// before the call. When the consumer is closed, the loop ends without
// an error, whether or not ctx ends too; and a break at ctx's error is
// a break like any other.
func TestRecordsYieldsCtxErrorLast(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)

	t.Run("ended before", func(t *testing.T) {
		c := newConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.Equal(t, []string{"err: context canceled"}, yields(ctx, c, nil))
		pos, _ := c.Position("t", 0)
		require.Zero(t, pos, "nothing taken")
	})

	t.Run("deadline while waiting", func(t *testing.T) {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		require.Equal(t, seq("v", 0, 5), vals(readN(t, c, 5)))
		// Nothing more: the loop waits in the long poll until the deadline.
		short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		require.Equal(t, []string{"err: context deadline exceeded"}, yields(short, c, nil))
	})

	t.Run("cancel in the body, body goes on", func(t *testing.T) {
		c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		got := yields(ctx, c, func(n int) {
			if n == 2 {
				cancel() // the rest of the fetch is not yielded
			}
		})
		require.Equal(t, []string{"v0", "v1", "err: context canceled"}, got)
		pos, _ := c.Position("t", 0)
		require.EqualValues(t, 2, pos, "nothing taken after the cancel")
		require.Equal(t, seq("v", 2, 3), vals(readN(t, c, 3)), "nothing lost")
	})

	t.Run("break at ctx's error", func(t *testing.T) {
		c := newConsumer(t, b)
		require.NoError(t, c.Assign("t", 0, consumer.Start()))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		n := 0
		for _, err := range c.Records(ctx) {
			n++
			require.ErrorIs(t, err, context.Canceled)
			break
		}
		require.Equal(t, 1, n)
		require.Equal(t, seq("v", 0, 2), vals(readN(t, c, 2)), "the consumer goes on")
	})

	t.Run("Close ends it without an error", func(t *testing.T) {
		for _, alsoCancel := range []bool{false, true} {
			t.Run(fmt.Sprint("cancel too: ", alsoCancel), func(t *testing.T) {
				c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
				require.NoError(t, c.Assign("t", 0, consumer.Start()))
				ctx, cancel := context.WithCancel(testCtx(t))
				defer cancel()
				got := yields(ctx, c, func(n int) {
					if n == 3 {
						require.NoError(t, c.Close())
						if alsoCancel {
							cancel()
						}
					}
				})
				require.Equal(t, seq("v", 0, 3), got, "Close is the consumer's own end: no error")
			})
		}
	})

	t.Run("Close from another goroutine during the wait", func(t *testing.T) {
		sc := newSignalClient(b)
		c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour))
		require.NoError(t, c.Assign("t", 0, consumer.End()))
		done := async(func() []string { return yields(testCtx(t), c, nil) })
		recv(t, sc.fetching)
		require.NoError(t, c.Close())
		require.Empty(t, recv(t, done))
	})
}
