package producer

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/record"
)

// gateClient is a Client of one partition whose Produce calls wait until
// gate is closed (or their ctx ends), and then succeed.
type gateClient struct {
	gate  chan struct{}
	calls atomic.Int64
}

func (*gateClient) Partitions(context.Context, string) (int, error) { return 1, nil }

func (*gateClient) InitProducerID(context.Context) (int64, int16, error) { return 0, 0, nil }

func (c *gateClient) Produce(ctx context.Context, _ *api.ProduceRequest) (api.ProduceResponse, error) {
	n := c.calls.Add(1)
	select {
	case <-c.gate:
	case <-ctx.Done():
		return api.ProduceResponse{}, ctx.Err()
	}
	return api.ProduceResponse{BaseOffset: n, LogAppendTime: -1, LogStartOffset: 0}, nil
}

// TestHotPathDeclinedRecordGivenBackNoLinger: without a linger, a record
// whose own Timestamp has a part below the millisecond, which the hot
// path truncated before addHot declined it (here the producer closed as
// it came), is set back as it was before it is placed under the topic's
// lock (produce's own undo, not placeRecord's: nothing lingers, so no ctx
// is watched), and so given back as it was, nanoseconds and monotonic
// reading, once it fails there. The batch it found is open while the
// request before it is in flight (MaxInFlight 1). With the undo of the
// zero Timestamp alone, as before the truncation, the record came back
// truncated.
func TestHotPathDeclinedRecordGivenBackNoLinger(t *testing.T) {
	ctx := healthCtx(t)
	c := &gateClient{gate: make(chan struct{})}
	p, err := New(c, DefaultTopic("t"), Linger(0), MaxInFlight(1), DisableIdempotence(), MetadataMaxAge(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer close(c.gate)
	p.Produce(ctx, &record.Record{Value: []byte("a")}, nil) // sent at once, and held
	waitFor(t, func() bool { return c.calls.Load() == 1 })
	p.Produce(ctx, &record.Record{Value: []byte("b")}, nil) // opens a batch behind it, marked hot
	pp := p.knownTopic("t").hot.Load()
	if pp == nil {
		t.Fatal("no hot partition")
	}
	pp.mu.Lock()
	hot := pp.cur != nil && pp.cur.hot
	pp.mu.Unlock()
	if !hot {
		t.Fatal("no hot batch open behind the request in flight")
	}

	mono := time.Now() // with a monotonic reading
	mono = mono.Add(time.Duration(123456 - mono.Nanosecond()%int(time.Millisecond)))
	r := &record.Record{Value: []byte("c"), Timestamp: mono}
	var got error
	p.Produce(closingCtx{ctx, p}, r, func(_ *record.Record, err error) { got = err })
	if !errors.Is(got, ErrClosed) {
		t.Fatalf("the record's promise got %v, not ErrClosed", got)
	}
	if r.Topic != "" || r.Timestamp != mono {
		t.Fatalf("the failed record was not given back as it was: topic %q, timestamp %v, was %v", r.Topic, r.Timestamp, mono)
	}
}
