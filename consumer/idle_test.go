package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// FetchMaxWait(0) asks the broker to answer at once. A Records loop over
// a partition with nothing new must not turn that into a busy loop of
// empty fetches. The client stands for a broker that, as runnel's does,
// waits out MaxWait when it has nothing to send: it moves a fake clock by
// MaxWait instead of sleeping. Over 10 s of that clock the loop makes
// about one fetch per 500 ms; the first fetch, and the first after records
// came, still answer at once.
func TestMaxWaitZeroIdleRecordsLoop(t *testing.T) {
	const period = 10 * time.Second
	var (
		mu    sync.Mutex
		clock time.Duration
		reqs  []api.FetchRequest // what each fetch asked
	)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	one := batchAt(t, 0, "x")
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, *req)
		fp := api.FetchedPartition{Topic: "t", Partition: 0}
		switch {
		case len(reqs) > 1000: // spinning: give up
			cancel()
		case req.Partitions[0].Offset == 1: // the fetch after the record: done
			cancel()
		case clock >= period: // a record comes
			fp.HighWatermark, fp.Records = 1, one
		default: // nothing: the broker waits out MaxWait
			clock += req.MaxWait
		}
		return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
	}}
	c := newConsumer(t, client, consumer.FetchMaxWait(0), consumer.FetchMinBytes(1000))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	got := valuesUntilCtxEnds(t, ctx, c)
	mu.Lock()
	defer mu.Unlock()
	// 20 fetches of 500 ms each, the first and the last two.
	require.LessOrEqual(t, len(reqs), 3+int(period/(500*time.Millisecond)), "fetches over %v of an idle partition", period)
	require.Equal(t, []string{"x"}, got)
	require.Zero(t, reqs[0].MaxWait, "the first fetch answers at once")
	require.Equal(t, 1000, reqs[0].MinBytes)
	last := reqs[len(reqs)-1]
	require.Zero(t, last.MaxWait, "so does the first after records came")
	require.Equal(t, 1000, last.MinBytes)
	for _, r := range reqs[1 : len(reqs)-1] {
		require.Equal(t, 500*time.Millisecond, r.MaxWait, "after an empty answer, a fetch waits for records")
		require.Equal(t, 1, r.MinBytes, "for the first one")
	}
}

// A Records loop with nothing to fetch at all (nothing assigned, or all
// paused) under FetchMaxWait(0) waits for a change rather than polling
// again at once, over and over (a test hook sees how long each Poll is
// about to wait; it ends the loop at the first wait, or after 100 Polls
// that did not wait).
func TestMaxWaitZeroRecordsLoopWithNothingToFetch(t *testing.T) {
	for _, paused := range []bool{false, true} {
		var waits []time.Duration
		ctx, cancel := context.WithCancel(testCtx(t))
		c := newConsumer(t, &fakeClient{t: t}, consumer.FetchMaxWait(0))
		if paused {
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			c.Pause(api.TopicPartition{Topic: "t", Partition: 0})
		}
		consumer.SetIdle(c, func(d time.Duration) {
			if waits = append(waits, d); d > 0 || len(waits) == 100 {
				cancel()
			}
		})
		for _, err := range c.Records(ctx) {
			if !ctxEnd(ctx, err) {
				require.NoError(t, err)
			}
		}
		cancel()
		require.LessOrEqual(t, len(waits), 2, "paused %v: polls before the loop waited", paused)
		require.Equal(t, 500*time.Millisecond, waits[len(waits)-1])
	}
}

// End to end: under FetchMaxWait(0), an idle Records loop waits in the
// broker's long poll, and a record produced meanwhile comes through it.
func TestMaxWaitZeroRecordsLoopWokenByProduce(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	sc := newSignalClient(b)
	c := newConsumer(t, sc, consumer.FetchMaxWait(0))
	require.NoError(t, c.Assign("t", 0, consumer.End()))
	ctx := testCtx(t)
	type result struct {
		value string
		err   error
	}
	res := async(func() result {
		for r, err := range c.Records(ctx) {
			if err != nil {
				return result{err: err}
			}
			return result{value: string(r.Value)}
		}
		return result{err: ctx.Err()}
	})
	req := recv(t, sc.fetching)
	require.Zero(t, req.MaxWait, "the first fetch answers at once")
	for req.MaxWait == 0 {
		req = recv(t, sc.fetching)
	}
	require.Equal(t, 500*time.Millisecond, req.MaxWait, "the next, after nothing came, waits")
	values(t, b, "t", 0, "new")
	r := recv(t, res)
	require.NoError(t, r.err)
	require.Equal(t, "new", r.value)
}

// The wait of an idle Records loop under FetchMaxWait(0) ends when a
// partition backed off after an error may be retried, as its fetches
// answered at once would have retried it then. Whether partition 0 is
// still backed off when the loop's fetch comes to wait depends on the
// machine's speed: a fetch that names it again (its backoff passed)
// answers at once or, idle, waits the whole 500 ms; the loop ends at the
// first that waits without it, which must wait no longer than the
// backoff. "slow" stalls the second fetch past the backoff, as a loaded
// machine may: partition 0 is then due again when the loop's first idle
// fetch is made (before, that run failed the test, which took the
// partitions of the first idle fetch for granted).
func TestMaxWaitZeroIdleWaitEndsForRetry(t *testing.T) {
	const backoff = 100 * time.Millisecond
	errUnknown := errors.New("an error the table does not know")
	for _, tc := range []struct {
		slow     bool
		err      error
		reported bool
	}{{false, errUnknown, true}, {true, errUnknown, true}, {false, api.ErrNotLeader, false}} {
		// (Retried without a word, the error leaves the first Poll with
		// nothing: the loop's next fetch is already idle, and a stall of
		// it changes nothing.)
		slow := tc.slow
		t.Run(fmt.Sprintf("slow=%v/%s", slow, api.Name(tc.err)), func(t *testing.T) {
			var reqs []api.FetchRequest
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			names0 := func(req api.FetchRequest) bool {
				return slices.ContainsFunc(req.Partitions, func(p api.FetchPartition) bool { return p.Partition == 0 })
			}
			client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
				reqs = append(reqs, *req)
				if slow && len(reqs) == 2 {
					time.Sleep(backoff) // a stall past partition 0's backoff
				}
				var resp api.FetchResponse
				for _, p := range req.Partitions {
					fp := api.FetchedPartition{Topic: p.Topic, Partition: p.Partition}
					if p.Partition == 0 {
						fp.Err = tc.err // retried after the backoff
					}
					resp.Partitions = append(resp.Partitions, fp)
				}
				if req.MaxWait > 0 && !names0(*req) {
					cancel() // the wait under test
				}
				return resp, nil
			}}
			c := newConsumer(t, client, consumer.FetchMaxWait(0), consumer.RetryBackoff(backoff))
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			require.NoError(t, c.Assign("t", 1, consumer.At(0)))
			var errs []error
			for _, err := range c.Records(ctx) {
				if !ctxEnd(ctx, err) {
					errs = append(errs, err)
				}
			}
			if tc.reported {
				require.NotEmpty(t, errs)
			} else {
				require.Empty(t, errs, "retried without a word")
			}
			for _, err := range errs {
				require.ErrorIs(t, err, tc.err)
			}
			// Typically: the error, an empty answer at once, then a wait
			// that partition 0's backoff bounds.
			last := reqs[len(reqs)-1]
			require.Positive(t, last.MaxWait)
			require.False(t, names0(last), "partition 0 backed off")
			require.LessOrEqual(t, last.MaxWait, backoff, "the wait ends when partition 0 may be retried")
			waitedWhole := false
			for _, r := range reqs[:len(reqs)-1] {
				if r.MaxWait > 0 {
					require.True(t, names0(r), "only a fetch that names partition 0 waits longer than its backoff")
					require.Equal(t, 500*time.Millisecond, r.MaxWait, "nothing backed off: an idle fetch waits as long as it may")
					waitedWhole = true
				}
			}
			if slow {
				require.True(t, waitedWhole, "the stall made partition 0 due at the first idle fetch")
			}
		})
	}
}
