package consumer_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// Tests of session 40's coverage pass: each drives a statement of the
// consumer that no test ran, and checks what it must do.

// undecodable returns a batch of vs, compressed with zstd, at base
// offset base, whose CRC holds but whose compressed records do not
// decompress.
func undecodable(t *testing.T, base int64, vs ...string) []byte {
	t.Helper()
	recs := make([]rec, len(vs))
	for i, v := range vs {
		recs[i] = rec{ts: 1, value: v}
	}
	data := encode(t, compression.Zstd, recs...)
	for i := record.HeaderSize; i < len(data); i++ {
		data[i] = 0xff
	}
	record.Batch(data).SetBaseOffset(base)
	record.Batch(data).UpdateCRC()
	return data
}

// TestReview40UndecompressableBatchSkipped: a batch whose CRC holds but
// whose compressed records do not decompress (a Client's, or a broker's
// that stored what a producer sent) costs only its own records: Records
// reports a *PartitionError at its base offset, and the next batch is
// returned. NumRecords counts a whole batch from its header; for a fetch
// that begins inside such a batch it must decode it, cannot, and stops
// counting there (as its doc says); and a Fetch whose bytes are no batch
// counts none.
func TestReview40UndecompressableBatchSkipped(t *testing.T) {
	data := cat(undecodable(t, 0, "a", "b"), batchAt(t, 2, "c", "d"))
	var n atomic.Int32
	client := serve(t, 4, data, &n)

	c := newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"c", "d"}, g.values("t", 0))
	require.Len(t, g.errs, 1)
	var pe *consumer.PartitionError
	require.ErrorAs(t, g.errs[0], &pe)
	require.EqualValues(t, 0, pe.Offset, "the first offset not returned")
	require.Equal(t, 4, fs.NumRecords(), "counted from the batch headers")
	var before []string
	for r, err := range fs.Records() {
		if err != nil {
			break // a loop that stops at the error ends there
		}
		before = append(before, string(r.Value))
	}
	require.Empty(t, before, "the batch that does not decode comes first")

	c2 := newConsumer(t, client)
	require.NoError(t, c2.Assign("t", 0, consumer.At(1)))
	fs, err = c2.Poll(testCtx(t))
	require.NoError(t, err)
	require.Zero(t, fs.NumRecords(), "the fetch begins inside the batch that does not decode")
	g = &got{}
	g.add(fs)
	require.Equal(t, []string{"c", "d"}, g.values("t", 0))
	require.Len(t, g.errs, 1)
	require.ErrorAs(t, g.errs[0], &pe)
	require.EqualValues(t, 1, pe.Offset, "the first offset not returned")

	f := consumer.Fetch{Topic: "t", Batches: []byte("not a batch at all, not even its header")}
	require.Zero(t, f.NumRecords())
}

// TestReview40FetchAnswerMissingAPartition: a fetch answer that leaves
// out a partition asked for (a Client's) is no error: that partition is
// fetched again next time, and its records come then, none lost.
func TestReview40FetchAnswerMissingAPartition(t *testing.T) {
	var fetches atomic.Int32
	client := &fakeClient{t: t, fetch: func(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		first := fetches.Add(1) == 1
		var resp api.FetchResponse
		for _, p := range req.Partitions {
			if first && p.Partition == 0 {
				continue
			}
			if p.Offset > 0 {
				continue // read already
			}
			resp.Partitions = append(resp.Partitions, api.FetchedPartition{
				Topic: p.Topic, Partition: p.Partition, HighWatermark: 1,
				Records: batchAt(t, 0, []string{"p0", "p1"}[p.Partition]),
			})
		}
		return resp, nil
	}}
	c := newConsumer(t, client)
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	fs, err := c.Poll(testCtx(t))
	require.NoError(t, err)
	require.NoError(t, fs.Err())
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"p1"}, g.values("t", 1))
	require.Empty(t, g.values("t", 0), "not answered")
	require.Empty(t, g.errs)
	g = pollUntil(t, c, 1)
	require.Equal(t, []string{"p0"}, g.values("t", 0), "fetched again")
	pos, ok := c.Position("t", 0)
	require.True(t, ok)
	require.EqualValues(t, 1, pos)
}

// TestReview40TransientFetchFailureWithResolveErrors: a fetch that fails
// with an error Kafka's table calls retriable is retried without a word;
// a Poll that has something else to report (a position that could not be
// resolved) returns that, with no error.
func TestReview40TransientFetchFailureWithResolveErrors(t *testing.T) {
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

// TestReview40RecordsBreakAtResolveError: a Records loop that breaks at
// the first of the errors a failed Poll brought (positions that could
// not be resolved) ends at once; the errors it did not yield are not
// lost, as unreported's doc says: their partitions were backed off, and
// the Polls after the backoff find them again.
func TestReview40RecordsBreakAtResolveError(t *testing.T) {
	client, listFail, _ := downClient(t)
	c := newConsumer(t, client, consumer.RetryBackoff(time.Millisecond))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.Start()))
	require.NoError(t, c.Assign("t", 2, consumer.At(0)))
	var errs []error
	for _, err := range c.Records(testCtx(t)) {
		errs = append(errs, err)
		break
	}
	require.Len(t, errs, 1)
	require.ErrorIs(t, errs[0], listFail)
	parts := map[int32]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(parts) < 2 && time.Now().Before(deadline); {
		fs, err := c.Poll(testCtx(t))
		require.Error(t, err, "the fetch is down")
		for _, f := range fs {
			require.ErrorIs(t, f.Err, listFail)
			parts[f.Partition] = true
		}
	}
	require.Equal(t, map[int32]bool{0: true, 1: true}, parts, "each partition's error, found again")
}

// TestReview40AssignTopicLookUpEnds: AssignTopic retries a retriable
// partition-count error, until its ctx ends — with ctx's error, also when
// the Client answers the call that ctx cut short with its own retriable
// error — or the consumer closes (ErrClosed, also when Close came from
// the Client's method itself). Nothing is assigned.
func TestReview40AssignTopicLookUpEnds(t *testing.T) {
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
		case <-time.After(10 * time.Second):
			t.Fatal("AssignTopic waits out its backoff after Close")
		}
		require.NoError(t, closeErr)
		require.EqualValues(t, 1, calls.Load())
		require.Empty(t, c.Assigned())
	})
}
