package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

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
func TestReview41RecordsYieldsCtxErrorLast(t *testing.T) {
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
