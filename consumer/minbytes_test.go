package consumer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// FetchMinBytes(0) is Kafka's fetch.min.bytes=0: a fetch asks for no
// bytes, so it answers at once with what there is, however long
// FetchMaxWait is. (api.FetchRequest's MinBytes 0 is its zero value and
// means 1: sent as it was, it made the broker wait out MaxWait.)
func TestMinBytesZeroAnswersAtOnce(t *testing.T) {
	b := openBroker(t, map[string]int{"t": 1})
	c := newConsumer(t, b, consumer.FetchMinBytes(0), consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	// A guard against the hang: the answer must come long before ctx
	// ends (a Poll whose ctx ends returns its error).
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	fs, err := c.Poll(ctx)
	require.NoError(t, err, "Poll waited for FetchMaxWait")
	require.Zero(t, fs.NumRecords())
	values(t, b, "t", 0, "a")
	fs, err = c.Poll(ctx)
	require.NoError(t, err)
	g := &got{}
	g.add(fs)
	require.Equal(t, []string{"a"}, g.values("t", 0))
	// Nothing to fetch: Poll does not wait either.
	c.Pause(api.TopicPartition{Topic: "t", Partition: 0})
	fs, err = c.Poll(ctx)
	require.NoError(t, err)
	require.Empty(t, fs)
}

// Under FetchMinBytes(0) a Records loop over an idle partition does not
// spin, as under FetchMaxWait(0) (see TestMaxWaitZeroIdleRecordsLoop):
// after an empty answer its fetch waits 500 ms for one record.
func TestMinBytesZeroIdleRecordsLoop(t *testing.T) {
	var (
		mu   sync.Mutex
		reqs []api.FetchRequest
	)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	client := &fakeClient{t: t, fetch: func(_ context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, *req)
		fp := api.FetchedPartition{Topic: "t", Partition: 0}
		switch len(reqs) {
		case 3:
			fp.HighWatermark, fp.Records = 1, batchAt(t, 0, "x")
		case 4:
			cancel()
		}
		return api.FetchResponse{Partitions: []api.FetchedPartition{fp}}, nil
	}}
	c := newConsumer(t, client, consumer.FetchMinBytes(0), consumer.FetchMaxWait(time.Hour))
	require.NoError(t, c.Assign("t", 0, consumer.At(0)))
	got := valuesUntilCtxEnds(t, ctx, c)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []string{"x"}, got)
	require.Len(t, reqs, 4)
	for i, want := range []struct {
		wait  time.Duration
		bytes int
	}{{0, 0}, {500 * time.Millisecond, 1}, {500 * time.Millisecond, 1}, {0, 0}} {
		require.Equal(t, want.wait, reqs[i].MaxWait, "fetch %d", i)
		require.Equal(t, want.bytes, reqs[i].MinBytes, "fetch %d", i)
	}
}
