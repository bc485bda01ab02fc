package producer

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
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
		pp := (*(*p.topics.Load())["t"].parts.Load())[0]
		pp.mu.Lock()
		defer pp.mu.Unlock()
		return pp.draining, pp.idle
	}
	if err := p.ProduceSync(ctx, &record.Record{Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	for {
		if d, i := running(); d && i {
			break // waiting for records
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.ProduceSync(ctx, &record.Record{Value: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	if d, _ := running(); !d {
		t.Fatal("the goroutine ended although idleKeep had not passed")
	}

	p.idleKeep.Store(int64(time.Millisecond))
	p.wakeAll() // it waits again, now for a millisecond
	for {
		if d, _ := running(); !d {
			break // ended
		}
		time.Sleep(time.Millisecond)
	}
	if err := p.ProduceSync(ctx, &record.Record{Value: []byte("c")}); err != nil {
		t.Fatal(err)
	}
	if c.requests != 3 {
		t.Fatalf("%d requests, want 3", c.requests)
	}
}

// blockingClient holds every request until release is closed.
type blockingClient struct {
	oneClient
	release chan struct{}
}

func (c *blockingClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	select {
	case <-c.release:
	case <-ctx.Done():
		return api.ProduceResponse{}, ctx.Err()
	}
	return c.oneClient.Produce(ctx, req)
}

// A Produce that waits for buffer bytes waits on one channel until space
// is freed: it does not wake itself (a failed reservation used to undo
// itself with a broadcast that woke its own caller, which then spun,
// making a channel per turn, for as long as the buffer stayed full).
func TestFullBufferWaitsWithoutSpinning(t *testing.T) {
	c := &blockingClient{release: make(chan struct{})}
	p, err := New(c, DefaultTopic("t"), MaxBufferedBytes(100), Linger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	value := make([]byte, 80)
	first := make(chan error, 1)
	p.Produce(ctx, &record.Record{Value: value}, func(_ *record.Record, err error) { first <- err })
	done := make(chan error, 1)
	go func() { done <- p.ProduceSync(ctx, &record.Record{Value: value}) }()
	// The second record waits for the first's space: let it wait a while,
	// counting the channels it waits on.
	for p.waiters.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	made := 0
	var last <-chan struct{}
	for range 200 {
		p.waiters.mu.Lock()
		if ch := p.waiters.ch; ch != nil && ch != last {
			made, last = made+1, ch
		}
		p.waiters.mu.Unlock()
		time.Sleep(100 * time.Microsecond)
	}
	if made != 1 {
		t.Fatalf("the waiting Produce waited on %d channels, want 1", made)
	}
	close(c.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
