package producer

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
)

// lockSpyClient answers every request at once and counts the requests
// sent while the producer's topic lock (topicState.mu) was held.
type lockSpyClient struct {
	oneClient
	p        atomic.Pointer[Producer]
	underMu  atomic.Int32
	requests atomic.Int32
}

func (c *lockSpyClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.requests.Add(1)
	if t := c.p.Load().knownTopic(req.Topic); t != nil {
		if t.mu.TryLock() {
			t.mu.Unlock()
		} else {
			c.underMu.Add(1)
		}
	}
	return c.oneClient.Produce(ctx, req)
}

// TestTrickleYieldOutsideTopicLock: with linger 0 and the default
// (sticky, KIP-480) partitioner, the Produce that starts a trickle yields
// to the partition's goroutine, which then sends the record on the
// caller's thread. The caller must not hold its topic's lock meanwhile:
// every other Produce to the topic would wait on it for the length of a
// whole request (a produce to the broker, an fsync under acks=all).
func TestTrickleYieldOutsideTopicLock(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // the yield runs the goroutine here, at once
	c := &lockSpyClient{}
	p, err := New(c, DefaultTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c.p.Store(p)
	ctx := context.Background()
	const n = 20
	for range n {
		done := make(chan error, 1)
		p.Produce(ctx, &record.Record{Value: []byte("x")}, func(_ *record.Record, err error) { done <- err })
		if err := testkit.Await(t, done, "the record's promise"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * trickleGap) // the goroutine parks: the next record starts a trickle
	}
	if got := c.underMu.Load(); got > 0 {
		t.Errorf("%d of %d requests were sent while the producing caller held the topic's lock", got, c.requests.Load())
	}
}
