package producer

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/record"
)

// lookUpClient answers every request at once, from a topic of one
// partition, and sends on looked each time it is asked for the
// partition count.
type lookUpClient struct{ looked chan struct{} }

func (c *lookUpClient) Partitions(context.Context, string) (int, error) {
	c.looked <- struct{}{}
	return 1, nil
}
func (*lookUpClient) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }
func (*lookUpClient) Produce(context.Context, *api.ProduceRequest) (api.ProduceResponse, error) {
	return api.ProduceResponse{LogAppendTime: -1}, nil
}

// MetadataMaxAge is counted on the monotonic clock, not the wall clock.
// The times of the periodic look-ups were kept in Unix ns: after the wall
// clock stepped back (NTP, a VM restored), the next look-up came that
// much later, and never for a large step. Here the monotonic clock (a
// fake one) moves past MetadataMaxAge while the wall clock barely moves,
// as after a step back of an hour: the partition count is asked for
// again after the next batch. Before, nothing came (the test fails so on
// the code before the fix, given the hook: its check read time.Now's
// Unix ns). The look-up is not due before the monotonic clock has moved
// that far, however long the test runs on the wall clock.
func TestMetadataMaxAgeOnMonotonicClock(t *testing.T) {
	const age = time.Hour
	c := &lookUpClient{looked: make(chan struct{}, 16)}
	p, err := New(c, DefaultTopic("t"), MetadataMaxAge(age))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var mono atomic.Int64
	mono.Store(int64(24 * time.Hour)) // any origin
	p.testMono = mono.Load
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	produce := func() {
		t.Helper()
		if err := p.ProduceSync(ctx, &record.Record{Value: []byte("a")}); err != nil {
			t.Fatal(err)
		}
	}
	// lookUps returns how many look-ups came since it was last called.
	// The partition's goroutine looks between two batches (maybeRefresh):
	// once a record's ProduceSync returns, the look that followed the
	// batch before it is done.
	lookUps := func() int {
		n := 0
		for {
			select {
			case <-c.looked:
				n++
			default:
				return n
			}
		}
	}
	produce() // the topic's first look-up
	produce()
	if n := lookUps(); n != 1 {
		t.Fatalf("%d look-ups for the first records, want 1", n)
	}
	mono.Add(int64(age - 1))
	produce() // its batch is followed by a look at the clock: not due
	produce()
	if n := lookUps(); n != 0 {
		t.Fatalf("%d look-ups before MetadataMaxAge had passed on the monotonic clock, want 0", n)
	}
	mono.Add(1)
	produce() // followed by the look-up
	produce()
	if n := lookUps(); n != 1 {
		t.Fatalf("%d look-ups once MetadataMaxAge had passed on the monotonic clock, want 1", n)
	}
	produce()
	if n := lookUps(); n != 0 {
		t.Fatalf("%d look-ups right after a periodic one, want 0", n)
	}
}
