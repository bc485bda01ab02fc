package producer

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/record"
)

// heldClient acknowledges every produce request once gate is closed:
// requests pile up in flight until then. sent receives one value a
// request.
type heldClient struct {
	gate chan struct{}
	sent chan struct{}

	mu   sync.Mutex
	next int64
}

func (*heldClient) Partitions(context.Context, string) (int, error)      { return 1, nil }
func (*heldClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }

func (c *heldClient) ProduceAsync(_ context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	c.mu.Lock()
	base := c.next
	c.next += int64(record.Batch(req.Batches).NumRecords())
	c.mu.Unlock()
	c.sent <- struct{}{}
	return api.ProduceResponse{BaseOffset: base, LogAppendTime: -1}, heldAck{c.gate}, nil
}

func (c *heldClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	resp, ack, err := c.ProduceAsync(ctx, req)
	if err != nil {
		return resp, err
	}
	return resp, ack.Wait(ctx)
}

type heldAck struct{ gate chan struct{} }

func (a heldAck) Wait(ctx context.Context) error {
	select {
	case <-a.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// A partition keeps as many spare batches as it may have in flight
// (MaxInFlight, at most maxSpares), each a distinct batch none of the
// partition's buffered ones is, and hands them back to the pool once its
// goroutine ends, so that an idle partition holds none.
func TestPartitionSpares(t *testing.T) {
	for _, tc := range []struct {
		inFlight, want int
		opts           []Opt
	}{
		{1, 1, nil},
		{5, 5, nil},
		{20, maxSpares, []Opt{DisableIdempotence()}},
	} {
		t.Run(fmt.Sprint("MaxInFlight=", tc.inFlight), func(t *testing.T) {
			c := &heldClient{gate: make(chan struct{}), sent: make(chan struct{}, 100)}
			// A batch a record, and the last one lingers: every batch
			// sent has one waiting behind it, and goes to the acker.
			opts := append([]Opt{DefaultTopic("t"), MaxInFlight(tc.inFlight), Linger(time.Minute),
				BatchMaxBytes(record.HeaderSize + 30)}, tc.opts...)
			p, err := New(c, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			ctx := context.Background()
			n := tc.inFlight + 5
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				p.Produce(ctx, &record.Record{Value: fmt.Appendf(nil, "value %010d", i)}, func(_ *record.Record, err error) {
					if err != nil {
						errs <- err
					}
					wg.Done()
				})
			}
			for range tc.inFlight {
				<-c.sent // the first MaxInFlight batches are in flight
			}
			close(c.gate)
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			pp := (*(*p.topics.Load())["t"].parts.Load())[0]
			pp.mu.Lock()
			spares := append([]*batch(nil), pp.spares...)
			busy := append([]*batch{pp.cur}, pp.queue...)
			pp.mu.Unlock()
			if len(spares) != tc.want {
				t.Fatalf("%d spares, want %d", len(spares), tc.want)
			}
			seen := map[*batch]bool{}
			for _, b := range busy {
				seen[b] = true
			}
			for _, b := range spares {
				if seen[b] {
					t.Fatalf("spare %p is twice among the partition's batches", b)
				}
				seen[b] = true
				if len(b.recs) != 0 || b.data != nil {
					t.Fatalf("spare %p is not empty: %d records", b, len(b.recs))
				}
			}

			p.idleKeep.Store(int64(time.Millisecond))
			p.wakeAll()
			for {
				pp.mu.Lock()
				draining, left := pp.draining, len(pp.spares)
				pp.mu.Unlock()
				if !draining {
					if left != 0 {
						t.Fatalf("%d spares kept after the partition's goroutine ended", left)
					}
					break
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}

// Spares a partition's load stops needing go back to the pool: after a
// burst that had MaxInFlight batches in flight, a trickle that takes one
// batch at a time keeps one spare once sparesTrim has passed twice (the
// first trim looks back to the burst, which took spares; here sparesTrim
// is 0: every batch done trims), rather than the burst's five for as long
// as records keep coming.
func TestPartitionSparesTrimmed(t *testing.T) {
	c := &heldClient{gate: make(chan struct{}), sent: make(chan struct{}, 100)}
	p, err := New(c, DefaultTopic("t"), MaxInFlight(5), Linger(time.Minute), BatchMaxBytes(record.HeaderSize+30))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	for i := range 10 {
		p.Produce(ctx, &record.Record{Value: fmt.Appendf(nil, "value %010d", i)}, nil)
	}
	for range 5 {
		<-c.sent
	}
	close(c.gate)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	pp := (*(*p.topics.Load())["t"].parts.Load())[0]
	spares := func() int {
		pp.mu.Lock()
		defer pp.mu.Unlock()
		return len(pp.spares)
	}
	if n := spares(); n != 5 {
		t.Fatalf("%d spares after the burst, want 5", n)
	}

	old := sparesTrim
	sparesTrim = 0
	defer func() { sparesTrim = old }()
	for i := range 3 {
		p.Produce(ctx, &record.Record{Value: fmt.Appendf(nil, "trickle %08d", i)}, nil)
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if n := spares(); i > 0 && n != 1 {
			t.Fatalf("%d spares after trickle batch %d, want 1", n, i)
		}
	}
}
