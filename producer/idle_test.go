package producer

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
)

// oneClient answers every request at once, from a topic of one partition.
type oneClient struct{ requests int }

func (*oneClient) Partitions(context.Context, string) (int, error)      { return 1, nil }
func (*oneClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }
func (c *oneClient) Produce(_ context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.requests++ // one request at a time per partition: no race
	return api.ProduceResponse{BaseOffset: int64(c.requests), LogAppendTime: -1}, nil
}

// The partition's goroutine waits idleKeep for records, is woken by one
// that comes meanwhile, and ends after idleKeep without any; a record
// after that starts a new one. Each record is delivered either way.
func TestPartitionGoroutineIdles(t *testing.T) {
	c := &oneClient{}
	p, err := New(c, DefaultTopic("t"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.idleKeep.Store(int64(time.Hour)) // stays: the next record wakes it
	ctx := context.Background()
	running := func() (draining, idle bool) {
		pp := (*p.knownTopic("t").parts.Load())[0]
		pp.mu.Lock()
		defer pp.mu.Unlock()
		return pp.draining, pp.idle
	}
	if err := p.ProduceSync(ctx, &record.Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	testkit.SpinUntil(t, func() bool { d, i := running(); return d && i }, "the partition's goroutine does not wait for records")
	if err := p.ProduceSync(ctx, &record.Record{Value: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if d, _ := running(); !d {
		t.Fatal("the goroutine ended although idleKeep had not passed")
	}

	p.idleKeep.Store(int64(time.Millisecond))
	p.wakeAll() // it waits again, now for a millisecond
	testkit.SpinUntil(t, func() bool { d, _ := running(); return !d }, "the partition's goroutine did not end after idleKeep")
	if err := p.ProduceSync(ctx, &record.Record{Value: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	if c.requests != 3 {
		t.Fatalf("%d requests, want 3", c.requests)
	}
}
