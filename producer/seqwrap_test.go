package producer

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// A partition's sequence numbers wrap from math.MaxInt32 to 0, as Kafka's
// do (DefaultRecordBatch.incrementSequence), within a batch and between
// batches, and the broker takes them: a batch of 3 records from
// MaxInt32-1 ends at 0, the next starts at 1, and its retry is answered
// as a duplicate of it, with its offsets.
func TestSequenceNumbersWrap(t *testing.T) {
	b, err := runnel.Open(runnel.Config{TopicDefaults: log.Config{Sync: log.SyncNever}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	c := &retryOnce{Broker: b}
	p, err := New(c, DefaultTopic("t"), Linger(time.Minute), MaxInFlight(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ts, err := p.topic(ctx, "t", true)
	if err != nil {
		t.Fatal(err)
	}
	// The partition's next sequence number under the first producer id
	// (generation 1), before it sends anything: the broker takes any first
	// sequence of a producer id it does not know.
	pp := (*ts.parts.Load())[0]
	pp.pidGen, pp.seq = 1, math.MaxInt32-1

	// Each group in one batch: produced while it lingers, sent by Flush.
	send := func(recs []*record.Record) {
		t.Helper()
		errs := make([]error, len(recs))
		for i, r := range recs {
			p.Produce(ctx, r, func(_ *record.Record, err error) { errs[i] = err })
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
		}
	}
	first := []*record.Record{{Value: []byte("a")}, {Value: []byte("b")}, {Value: []byte("c")}}
	send(first)
	for i, want := range []int32{math.MaxInt32 - 1, math.MaxInt32, 0} {
		if r := first[i]; r.Sequence != want || r.Offset != int64(i) {
			t.Errorf("record %d: sequence %d offset %d, want %d and %d", i, r.Sequence, r.Offset, want, i)
		}
	}
	c.retry = true // the next request is appended, answered with a retriable error, and sent again
	second := []*record.Record{{Value: []byte("d")}, {Value: []byte("e")}}
	send(second)
	for i, want := range []int32{1, 2} {
		if r := second[i]; r.Sequence != want || r.Offset != int64(3+i) {
			t.Errorf("record %d: sequence %d offset %d, want %d and %d", 3+i, r.Sequence, r.Offset, want, 3+i)
		}
	}
	if c.calls != 3 {
		t.Errorf("%d produce requests, want 3 (one retried)", c.calls)
	}
	end, err := b.ListOffset(ctx, "t", 0, api.Latest)
	if err != nil {
		t.Fatal(err)
	}
	if end.Offset != 5 {
		t.Errorf("log end %d, want 5: the retry was appended again", end.Offset)
	}
}

// retryOnce is a broker whose next request, once retry is set, is
// appended and then answered with a retriable error.
type retryOnce struct {
	*runnel.Broker
	retry bool
	calls int // one request at a time (MaxInFlight 1, one partition)
}

func (c *retryOnce) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.calls++
	resp, err := c.Broker.Produce(ctx, req)
	if err == nil && c.retry {
		c.retry = false
		return api.ProduceResponse{}, api.ErrRequestTimedOut
	}
	return resp, err
}
