package consumer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// chaosClient fails a broker's calls at random with errors Kafka's table
// calls retriable: a whole Fetch, one partition's answer (the others
// answered as the broker answers them), or a ListOffset.
type chaosClient struct {
	*runnel.Broker
	mu  sync.Mutex
	rnd *rand.Rand
}

var transientErrs = []error{api.ErrNotLeader, api.ErrRequestTimedOut, log.ErrLogFenced, api.ErrNotEnoughReplicas}

func (c *chaosClient) roll(n int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rnd.IntN(n)
}

func (c *chaosClient) ListOffset(ctx context.Context, topic string, p int32, ts int64) (api.ListedOffset, error) {
	if c.roll(3) == 0 {
		return api.ListedOffset{}, transientErrs[c.roll(len(transientErrs))]
	}
	return c.Broker.ListOffset(ctx, topic, p, ts)
}

func (c *chaosClient) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	switch c.roll(4) {
	case 0:
		return api.FetchResponse{}, transientErrs[c.roll(len(transientErrs))]
	case 1:
		resp, err := c.Broker.Fetch(ctx, req)
		if err != nil || len(resp.Partitions) == 0 {
			return resp, err
		}
		i := c.roll(len(resp.Partitions))
		fp := &resp.Partitions[i]
		*fp = api.FetchedPartition{Topic: fp.Topic, Partition: fp.Partition, Err: transientErrs[c.roll(len(transientErrs))], HighWatermark: -1}
		return resp, nil
	}
	return c.Broker.Fetch(ctx, req)
}

// TestTransientErrorsStress reads three partitions with a Records loop
// through a Client that fails fetches and look-ups at random with
// retriable errors, while records are produced, the loop seeks at random
// (back and forth) and partitions are paused and resumed from another
// goroutine: nothing is yielded but records, and each partition's records
// come exactly from its position on, each once, in order: none skipped,
// none repeated but after a Seek back.
func TestTransientErrorsStress(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(fmt.Sprint("Poll=", poll), func(t *testing.T) { transientStress(t, poll) })
	}
}

func transientStress(t *testing.T, poll bool) {
	n := 300
	if testing.Short() {
		n = 100
	}
	const parts = 3
	b := openBroker(t, map[string]int{"t": parts})
	client := &chaosClient{Broker: b, rnd: rand.New(rand.NewPCG(1, 2))}
	c := newConsumer(t, client, consumer.RetryBackoff(100*time.Microsecond), consumer.FetchMaxWait(5*time.Millisecond),
		consumer.FetchMaxPartitionBytes(200))
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	require.NoError(t, c.Assign("t", 1, consumer.At(0)))
	require.NoError(t, c.Assign("t", 2, consumer.Start()))
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()

	// The batches, encoded here: the producer's goroutine must not fail
	// the test with require.
	var reqs []*api.ProduceRequest
	for i := 0; i < n; i += 10 {
		for p := range int32(parts) {
			vs := seq(fmt.Sprintf("p%d-", p), i, 10)
			recs := make([]rec, len(vs))
			for k, v := range vs {
				recs[k].value = v
			}
			reqs = append(reqs, &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll,
				Batches: encode(t, compression.None, recs...)})
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the producer
		defer wg.Done()
		for _, req := range reqs {
			if _, err := b.Produce(context.Background(), req); err != nil {
				t.Errorf("produce: %v", err)
				cancel()
				return
			}
			time.Sleep(30 * time.Microsecond)
		}
	}()
	go func() { // pauses and resumes
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(3, 4))
		for ctx.Err() == nil {
			tp := api.TopicPartition{Topic: "t", Partition: int32(rnd.IntN(parts))}
			c.Pause(tp)
			time.Sleep(time.Duration(rnd.IntN(500)) * time.Microsecond)
			c.Resume(tp)
			time.Sleep(time.Duration(rnd.IntN(500)) * time.Microsecond)
		}
	}()

	rnd := rand.New(rand.NewPCG(5, 6))
	next := make([]int64, parts) // the offset each partition's next record must have
	done := 0                    // partitions read to n
	seeks := 0
	records := c.Records(ctx)
	if poll {
		// Poll, each fetch read whole: a Seek comes between Polls.
		records = func(yield func(*record.Record, error) bool) {
			for ctx.Err() == nil {
				fs, err := c.Poll(ctx)
				if err != nil {
					yield(nil, err)
					return
				}
				for r, err := range fs.Records() {
					if !yield(r, err) {
						return
					}
				}
			}
		}
	}
	for r, err := range records {
		require.NoError(t, err)
		p := r.Partition
		require.Equal(t, next[p], r.Offset, "partition %d", p)
		require.Equal(t, fmt.Sprintf("p%d-%d", p, r.Offset), string(r.Value))
		next[p]++
		if next[p] == int64(n) {
			if done++; done == parts {
				break
			}
		}
		if !poll && rnd.IntN(50) == 0 && next[p] < int64(n)-1 {
			to := rnd.Int64N(next[p] + 1)
			require.NoError(t, c.Seek("t", p, consumer.At(to)))
			next[p] = to
			seeks++
		}
	}
	cancel()
	wg.Wait()
	require.Equal(t, parts, done)
	t.Logf("%d seeks", seeks)
}
