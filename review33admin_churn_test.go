package runnel_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"go.uber.org/goleak"
)

type r33out struct {
	value     string
	err       error
	partition int32
	offset    int64
}

// TestReview33DiskChurnKeepsAcked: on disk, config changes that reopen
// every partition's log — the fsync policy switched among SyncAlways,
// SyncPeriodic and SyncNever, segment.bytes, segment.index.bytes,
// index.interval.bytes, message.timestamp.type — and growths
// (CreatePartitions) while producers with each partitioner (sticky with
// keys, round robin; idempotent with requests in flight, and not) write,
// and the broker's maintenance runs every few ms (retention unlimited, so
// that nothing acknowledged may go): after a clean Close and an Open,
// every acknowledged record is in the log once, at the partition and
// offset its promise was told, and no record is there twice.
func TestReview33DiskChurnKeepsAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("writes for a while on disk")
	}
	for seed := uint64(0); seed < 2; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { r33DiskChurn(t, seed) })
	}
}

func r33DiskChurn(t *testing.T, seed uint64) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 33))
	cfg := runnel.Config{Dir: t.TempDir(), MaintenanceInterval: 2 * time.Millisecond}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var outs []*r33out
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var prods []*producer.Producer
	for i, opts := range [][]producer.Opt{
		{producer.Linger(time.Millisecond), producer.MaxInFlight(5)},
		{producer.DisableIdempotence(), producer.RecordPartitioner(producer.RoundRobinPartitioner())},
		{producer.RecordPartitioner(producer.StickyKeyPartitioner())},
	} {
		opts = append(opts, producer.RetryBackoff(time.Millisecond), producer.MetadataMaxAge(3*time.Millisecond))
		p, err := producer.New(b, opts...)
		if err != nil {
			t.Fatal(err)
		}
		prods = append(prods, p)
		wg.Go(func() {
			for n := range 15000 { // a bound on the test's time
				select {
				case <-stop:
					return
				default:
				}
				o := &r33out{value: fmt.Sprintf("p%d-%d", i, n)}
				mu.Lock()
				outs = append(outs, o)
				mu.Unlock()
				r := &record.Record{Topic: "t", Value: []byte(o.value)}
				if n%2 == 0 {
					r.Key = []byte(o.value)
				}
				p.Produce(ctx, r, func(r *record.Record, err error) {
					mu.Lock()
					o.err, o.partition, o.offset = err, r.Partition, r.Offset
					mu.Unlock()
				})
				if n%20 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	parts := 1
	for range 15 { // config changes (and growths) a run
		if rng.IntN(4) == 0 && parts < 5 {
			parts++
			if err := b.CreatePartitions(ctx, "t", parts); err != nil {
				t.Fatal(err)
			}
		}
		err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
			c.Sync = []log.SyncPolicy{0, log.SyncAlways, log.SyncPeriodic, log.SyncNever}[rng.IntN(4)]
			c.FlushMessages = []int64{0, 1, 5}[rng.IntN(3)]
			c.SegmentBytes = []int64{0, 200, 1000}[rng.IntN(3)]
			c.TimestampType = []log.TimestampType{0, log.LogAppendTime}[rng.IntN(2)]
			c.SegmentIndexBytes = []int{0, 100}[rng.IntN(2)]
			c.IndexIntervalBytes = []int{0, 1, 50}[rng.IntN(3)]
		})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(5)) * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	for _, p := range prods {
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got := map[string]string{} // value -> p/off
	for p := range parts {
		for off := int64(0); ; {
			resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: int32(p), Offset: off}}})
			if err != nil {
				t.Fatal(err)
			}
			fp := resp.Partitions[0]
			if fp.Err != nil {
				t.Fatal(fp.Err)
			}
			if len(fp.Records) == 0 {
				break
			}
			for bt, err := range record.Batches(fp.Records) {
				if err != nil {
					t.Fatal(err)
				}
				for r, err := range bt.Records() {
					if err != nil {
						t.Fatal(err)
					}
					k := fmt.Sprintf("%d/%d", p, r.Offset)
					if prev, ok := got[string(r.Value)]; ok {
						t.Errorf("%s twice: %s and %s", r.Value, prev, k)
					}
					got[string(r.Value)] = k
					off = r.Offset + 1
				}
			}
		}
	}
	acked, failed := 0, 0
	for _, o := range outs {
		if o.err != nil {
			failed++
			continue
		}
		acked++
		want := fmt.Sprintf("%d/%d", o.partition, o.offset)
		if got[o.value] != want {
			t.Errorf("%s acked at %s, found at %q", o.value, want, got[o.value])
		}
	}
	t.Logf("acked %d failed %d in log %d", acked, failed, len(got))
}
