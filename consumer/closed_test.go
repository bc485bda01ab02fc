package consumer_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// drain runs a Records loop to its end and returns what it yielded.
func drain(ctx context.Context, c *consumer.Consumer) (vals []string, errs []error) {
	for r, err := range c.Records(ctx) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		vals = append(vals, string(r.Value))
	}
	return vals, errs
}

type drained struct {
	vals []string
	errs []error
}

// A broker closed while a consumer long-polls it ends the consumer's
// Records loop with the broker's error, once; Poll returns it from then
// on. Positions stay where the records yielded left them.
func TestBrokerClosedEndsRecords(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 2}) // runnel.Open(runnel.Config{})
	values(t, b, "t", 0, "a", "b")
	sc := newSignalClient(b)
	// An hour's backoff: a loop that retried would not end before the
	// test's deadline.
	c := newConsumer(t, sc, consumer.FetchMaxWait(time.Hour), consumer.RetryBackoff(time.Hour))
	require.NoError(t, c.AssignTopic(testCtx(t), "t", consumer.Start()))

	done := async(func() drained {
		v, e := drain(testCtx(t), c)
		return drained{v, e}
	})
	// The first fetch returns a and b; the second waits for more.
	recv(t, sc.fetching)
	recv(t, sc.fetching)
	require.NoError(t, b.Close())
	d := recv(t, done)
	require.Equal(t, []string{"a", "b"}, d.vals)
	require.Len(t, d.errs, 1, "the error is yielded once, and Records ends")
	require.ErrorIs(t, d.errs[0], runnel.ErrClosed)
	require.ErrorIs(t, d.errs[0], api.ErrBrokerClosed)

	_, err := c.Poll(testCtx(t))
	require.ErrorIs(t, err, runnel.ErrClosed)
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 2, pos)
	_, err = c.Poll(testCtx(t))
	require.ErrorIs(t, err, runnel.ErrClosed, "and again: nothing was stopped for good in between")
}

// Closed before the positions were resolved: ListOffset fails with the
// broker's error, which is the consumer's, not the partitions'.
func TestBrokerClosedBeforeResolve(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	values(t, b, "t", 0, "a")
	c := newConsumer(t, b, consumer.RetryBackoff(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, b.Close())

	fs, err := c.Poll(testCtx(t))
	require.ErrorIs(t, err, runnel.ErrClosed)
	require.Empty(t, fs, "no partition failed: the Client did")
	_, ok := c.Position("t", 0)
	require.False(t, ok, "still to be resolved")

	vals, errs := drain(testCtx(t), c)
	require.Empty(t, vals)
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], runnel.ErrClosed)
}

// The broker's error in one partition's answer (a broker that closed
// during the fetch) is the Client's: Poll fails with it and no position
// moves, not even those of the other partitions of that answer.
func TestBrokerClosedInAPartitionsAnswer(t *testing.T) {
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		return api.FetchResponse{Partitions: []api.FetchedPartition{
			{Topic: "t", Partition: 0, HighWatermark: 1, Records: batchAt(t, 0, "a")},
			{Topic: "t", Partition: 1, Err: api.ErrBrokerClosed},
		}}, nil
	}}
	c := newConsumer(t, client, consumer.RetryBackoff(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.ErrorIs(t, err, api.ErrBrokerClosed)
	require.Empty(t, fs)
	for p := range int32(2) {
		pos, _ := c.Position("t", p)
		require.Zero(t, pos)
	}
	vals, errs := drain(testCtx(t), c)
	require.Empty(t, vals)
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], api.ErrBrokerClosed)
}

// The Client's own error (Poll's) ends Records when Kafka's table calls
// it not retriable; one the table does not know is yielded and retried
// after RetryBackoff; one it calls retriable is retried without a word
// (see TestTransientErrorsRetriedQuietly).
func TestClientErrorEndsRecordsPerTheTable(t *testing.T) {
	for _, tc := range []struct {
		err     error
		ends    bool
		yielded bool
	}{
		{api.ErrBrokerClosed, true, true},
		{api.ErrInvalidRequest, true, true},
		{api.ErrRequestTimedOut, false, false},
		{errors.New("connection reset: unknown to the table"), false, true},
	} {
		t.Run(api.Name(tc.err), func(t *testing.T) {
			var fetches atomic.Int32
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			client := &fakeClient{t: t, fetch: func(context.Context, *api.FetchRequest) (api.FetchResponse, error) {
				if fetches.Add(1) == 3 && !tc.yielded {
					cancel() // retried twice: enough
				}
				return api.FetchResponse{}, tc.err
			}}
			c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
			require.NoError(t, c.Assign("t", 0, consumer.At(0)))
			var errs []error
			for _, err := range c.Records(ctx) {
				if ctxEnd(ctx, err) {
					errs = append(errs, err)
					continue // the last
				}
				require.ErrorIs(t, err, tc.err)
				if errs = append(errs, err); len(errs) == 3 {
					break
				}
			}
			switch {
			case tc.ends:
				require.Len(t, errs, 1, "yielded once, then Records ended")
				require.EqualValues(t, 1, fetches.Load())
			case tc.yielded:
				require.Len(t, errs, 3, "retried")
			default:
				require.Equal(t, []error{context.Canceled}, errs, "retried without a word until ctx ended")
				require.GreaterOrEqual(t, fetches.Load(), int32(3), "retried")
			}
		})
	}
}
