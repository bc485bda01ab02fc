package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// flakyClient wraps a broker and fails its calls with the errors a test
// queues, one per call, before answering as the broker does: a Client
// whose broker moves leadership, times out or has a storage hiccup.
type flakyClient struct {
	*runnel.Broker
	mu         sync.Mutex
	fetchErrs  []error // for the whole Fetch
	partErrs   []error // for every partition of a Fetch's answer
	listErrs   []error // for ListOffset
	fetches    int
	listOffset int
}

func pop(errs *[]error) error {
	if len(*errs) == 0 {
		return nil
	}
	err := (*errs)[0]
	*errs = (*errs)[1:]
	return err
}

func (f *flakyClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	f.mu.Lock()
	f.listOffset++
	err := pop(&f.listErrs)
	f.mu.Unlock()
	if err != nil {
		return api.ListedOffset{}, err
	}
	return f.Broker.ListOffset(ctx, topic, p, ts)
}

func (f *flakyClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	f.mu.Lock()
	f.fetches++
	err, perr := pop(&f.fetchErrs), error(nil)
	if err == nil {
		perr = pop(&f.partErrs)
	}
	f.mu.Unlock()
	if err != nil {
		return api.FetchResponse{}, err
	}
	if perr != nil {
		var resp api.FetchResponse
		for _, p := range req.Partitions {
			resp.Partitions = append(resp.Partitions, api.FetchedPartition{Topic: p.Topic, Partition: p.Partition, Err: perr, HighWatermark: -1})
		}
		return resp, nil
	}
	return f.Broker.Fetch(ctx, req)
}

// TestTransientErrorsRetriedQuietly: errors Kafka's table calls
// retriable — not the leader, a request timed out, a storage error, an
// unknown topic or partition not read yet — whether the Client's Fetch
// or ListOffset returns them or a partition's answer holds them, are
// retried after RetryBackoff without a word, as Kafka's consumers and
// franz-go retry them: Poll returns no error and no partition error, and
// every record comes, in order, once.
func TestTransientErrorsRetriedQuietly(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2})
	for p := range int32(2) {
		values(t, b, "t", p, seq("v", 0, 5)...)
	}
	transient := []error{api.ErrNotLeader, api.ErrRequestTimedOut, log.ErrLogFenced,
		api.ErrNotEnoughReplicas, api.ErrUnknownTopicOrPartition}
	client := &flakyClient{Broker: b,
		fetchErrs: append([]error(nil), transient...),
		// Not api.ErrUnknownTopicOrPartition: in a partition's answer,
		// once the Client has answered for it, that is the partition
		// gone (see TestUnknownTopicAssigned for one not read yet).
		partErrs: append([]error(nil), transient[:4]...),
		listErrs: append([]error(nil), transient...),
	}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond), consumer.FetchMaxWait(10*time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	ctx := testCtx(t)
	g := &got{}
	polls := 0
	for len(g.recs) < 10 {
		fs, err := c.Poll(ctx)
		require.NoError(t, err, "poll %d", polls)
		g.add(fs)
		require.Empty(t, g.errs, "poll %d", polls)
		polls++
	}
	require.Equal(t, seq("v", 0, 5), g.values("t", 0))
	require.Equal(t, seq("v", 0, 5), g.values("t", 1))
	client.mu.Lock()
	left := [][]error{client.fetchErrs, client.partErrs, client.listErrs}
	client.mu.Unlock()
	for _, errs := range left {
		require.Empty(t, errs, "every fault was met")
	}

	// The Records iterator too.
	values(t, b, "t", 0, "w")
	client.mu.Lock()
	client.fetchErrs = []error{api.ErrNotLeader}
	client.partErrs = []error{api.ErrRequestTimedOut}
	client.mu.Unlock()
	require.Equal(t, []string{"w"}, vals(readN(t, c, 1)))
	client.mu.Lock()
	defer client.mu.Unlock()
	require.Empty(t, client.fetchErrs)
	require.Empty(t, client.partErrs)
}

// TestTransientErrorsRetryEndsWithCtxAndClose: a Poll that waits out the
// backoff of a failed fetch returns at once when its ctx ends (with its
// error) or the consumer closes (ErrClosed).
func TestTransientErrorsRetryEndsWithCtxAndClose(t *testing.T) {
	fetched := make(chan struct{}, 100)
	client := &fakeClient{t: t, fetch: func(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
		fetched <- struct{}{}
		return api.FetchResponse{}, api.ErrNotLeader
	}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))

	ctx, cancel := context.WithCancel(testCtx(t))
	done := async(func() error { _, err := c.Poll(ctx); return err })
	recv(t, fetched)
	cancel()
	require.ErrorIs(t, recv(t, done), context.Canceled)

	done = async(func() error { _, err := c.Poll(testCtx(t)); return err })
	// The partition is still backed off (an hour): the Poll waits with
	// nothing to fetch, and Close ends it.
	require.NoError(t, c.Close())
	require.ErrorIs(t, recv(t, done), consumer.ErrClosed)
	require.Len(t, fetched, 0, "no fetch during the backoff")

	// Records too, from another goroutine's Close.
	c2 := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c2.Assign("t", 0, consumer.At(0)))
	var errs []error
	ended := async(func() []error {
		for _, err := range c2.Records(testCtx(t)) {
			errs = append(errs, err)
		}
		return errs
	})
	recv(t, fetched)
	require.NoError(t, c2.Close())
	require.Empty(t, recv(t, ended), "the transient error is not yielded")
}

// The errors a Client's Fetch returns that are not transient still come
// from Poll: one Kafka's table calls not retriable, and one it does not
// know (a Client's own failure), which the Records loop retries.
func TestNonTransientFetchErrorsReturned(t *testing.T) {
	for _, want := range []error{api.ErrInvalidRequest, errors.New("connection reset")} {
		client := &fakeClient{t: t, fetch: func(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
			return api.FetchResponse{}, want
		}}
		c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		_, err := c.Poll(testCtx(t))
		require.ErrorIs(t, err, want)
	}
}

// A Fetch error that matches api.ErrBrokerClosed is the Client closed,
// Poll's error, even when it also matches an error Kafka's table calls
// retriable (a remote Client's "timed out: broker closed", say), as it is
// when a partition's answer or a ListOffset holds it: it is not retried
// quietly.
func TestClosedClientFetchErrorNotRetried(t *testing.T) {
	c := closedClientConsumer(t)
	// Retried, the Poll would wait out the hour of backoff: the ctx ends
	// it sooner.
	ctx, cancel := context.WithTimeout(testCtx(t), testkit.HangGuard)
	defer cancel()
	_, err := c.Poll(ctx)
	require.ErrorIs(t, err, api.ErrBrokerClosed)
}

// closedClientConsumer returns a consumer of a partition whose Client
// answers every Fetch with an error that matches both api.ErrBrokerClosed
// and api.ErrRequestTimedOut, with an hour of RetryBackoff.
func closedClientConsumer(t *testing.T) *consumer.Consumer {
	closed := fmt.Errorf("%w: %w", api.ErrRequestTimedOut, api.ErrBrokerClosed)
	client := &fakeClient{t: t, fetch: func(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
		return api.FetchResponse{}, closed
	}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	return c
}

// A Records loop ends after yielding a Poll error that matches
// api.ErrBrokerClosed (the Client closed, as Records' doc says), also
// when the error matches an error Kafka's table calls retriable too,
// rather than wait RetryBackoff and poll the closed Client again.
func TestRecordsEndsOnClosedClientError(t *testing.T) {
	c := closedClientConsumer(t)
	// Not ended, the loop would wait out the hour of backoff: the ctx
	// ends it sooner.
	ctx, cancel := context.WithTimeout(testCtx(t), testkit.HangGuard)
	defer cancel()
	var errs []error
	for _, err := range c.Records(ctx) {
		errs = append(errs, err)
	}
	require.NoError(t, ctx.Err(), "the loop ended by itself")
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], api.ErrBrokerClosed)
}

// A Seek during the backoff of a retriable error ends it: the next Poll
// fetches the partition from the new position at once, its records each
// once, none skipped.
func TestSeekDuringTransientBackoff(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, seq("v", 0, 5)...)
	client := &flakyClient{Broker: b, partErrs: []error{api.ErrNotLeader}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour), consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(2)))
	ctx := testCtx(t)
	fs, err := c.Poll(ctx) // the partition's answer fails: backed off for an hour
	require.NoError(t, err)
	require.Zero(t, fs.NumRecords())
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 2, pos, "the position is kept")
	require.NoError(t, c.Seek("t", 0, consumer.At(1)))
	g := &got{}
	for len(g.recs) < 4 {
		fs, err := c.Poll(ctx)
		require.NoError(t, err)
		g.add(fs)
	}
	require.Equal(t, seq("v", 1, 4), g.values("t", 0))
}

// TestTransientFetchFailureWithResolveErrors: a fetch that fails
// with an error Kafka's table calls retriable is retried without a word;
// a Poll that has something else to report (a position that could not be
// resolved) returns that, with no error.
func TestTransientFetchFailureWithResolveErrors(t *testing.T) {
	client, listFail, _ := downClient(t)
	client.fetch = func(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
		return api.FetchResponse{}, api.ErrRequestTimedOut
	}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err, "the transient fetch failure is retried, not reported")
	require.Len(t, fs, 1)
	require.ErrorIs(t, fs[0].Err, listFail)
	require.EqualValues(t, 0, fs[0].Partition)
}

// TestAssignTopicLookUpEnds: AssignTopic retries a retriable
// partition-count error, until its ctx ends — with ctx's error, also when
// the Client answers the call that ctx cut short with its own retriable
// error — or the consumer closes (ErrClosed, also when Close came from
// the Client's method itself). Nothing is assigned.
func TestAssignTopicLookUpEnds(t *testing.T) {
	t.Run("ctx", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		var calls atomic.Int32
		client := &fakeClient{t: t, partitions: func(context.Context, string) (int, error) {
			calls.Add(1)
			cancel()
			return 0, api.ErrRequestTimedOut
		}}
		c := newConsumer(t, client, consumer.RetryBackoff(time.Hour))
		err := c.AssignTopic(ctx, "t", consumer.Start())
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, api.ErrRequestTimedOut)
		require.EqualValues(t, 1, calls.Load())
		require.Empty(t, c.Assigned())
	})
	t.Run("close", func(t *testing.T) {
		var calls atomic.Int32
		var c *consumer.Consumer
		var closeErr error
		client := &fakeClient{t: t, partitions: func(context.Context, string) (int, error) {
			calls.Add(1)
			closeErr = c.Close()
			return 0, api.ErrRequestTimedOut
		}}
		c = newConsumer(t, client, consumer.RetryBackoff(time.Hour))
		done := make(chan error, 1)
		go func() { done <- c.AssignTopic(testCtx(t), "t", consumer.Start()) }()
		select {
		case err := <-done:
			require.ErrorIs(t, err, consumer.ErrClosed)
		case <-time.After(testkit.HangGuard):
			t.Fatal("AssignTopic waits out its backoff after Close")
		}
		require.NoError(t, closeErr)
		require.EqualValues(t, 1, calls.Load())
		require.Empty(t, c.Assigned())
	})
}
