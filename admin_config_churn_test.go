package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"go.uber.org/goleak"
)

// TestConfigChurnUnderProducers changes a topic's config (UpdateTopicConfig,
// each change reopening every partition's log) and grows it
// (CreatePartitions) while idempotent producers write to it through a
// runneltest.Faults that loses the answers of some appended requests, so
// that their retries straddle the changes. The changes are the ones that
// decide whether a batch is taken and how it is stamped: max.message.bytes
// between a size that refuses the large records and the default,
// cleanup.policy between delete, compact (which refuses records without a
// key) and both, message.timestamp.type between CreateTime and
// LogAppendTime. The producers send small and large records, with and
// without keys. Once they are flushed, every record's outcome is checked
// against the log:
//
//   - a record whose promise succeeded is in the log once, at the
//     partition and offset it was told, with the timestamp and timestamp
//     type it was told (its create time, or the broker's append time);
//   - a record that failed is in the log only if its error says it may
//     have been written (producer.ErrMaybeWritten), and its error is the
//     broker's refusal of it: ErrRecordTooLarge only for a large record,
//     log.ErrInvalidRecord only for one without a key (a refused batch is
//     split until only the records at fault fail), unless an earlier
//     attempt of its batch may have been appended;
//   - no record is in the log twice, and none that was not produced;
//   - no goroutine is left once the producers and the broker are closed.
//
// The broker's maintenance never runs (compaction would drop the records
// without a key that a delete policy took).
//
// A few seeds run by default (fewer under -short); RUNNEL_CONFIG_CHURN=N
// runs N seeds, RUNNEL_CONFIG_CHURN_BASE=S from seed S.
func TestConfigChurnUnderProducers(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_CONFIG_CHURN", 6, 2, runConfigChurn)
}

// churnOutcome is what a record's promise said.
type churnOutcome struct {
	value     string
	large     bool
	keyless   bool
	err       error
	partition int32
	offset    int64
	ts        int64 // ms
	tsType    record.TimestampType
}

func runConfigChurn(t *testing.T, seed uint64) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0x636875726e))
	const (
		smallMax     = 1024 // max.message.bytes that refuses the large records
		largeValue   = 2000
		churnRecords = 3000 // at most, per producer
	)
	clock := &amClock{}
	clock.ms.Store(1_700_000_000_000)
	b, err := runnel.Open(runnel.Config{Clock: clock, MaintenanceInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	parts := 1 + rng.IntN(2)
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: parts}); err != nil {
		t.Fatal(err)
	}

	f := runneltest.NewFaults(t, b)
	var requests atomic.Int64
	lose := int64(3 + rng.IntN(5)) // every lose-th produce request loses its answer
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut,
		Count: runneltest.Unlimited, Match: func(runneltest.Request) bool { return requests.Add(1)%lose == 0 }})

	nprod := 1 + rng.IntN(2)
	var (
		mu       sync.Mutex
		outcomes []*churnOutcome
		wg       sync.WaitGroup
		done     atomic.Int64             // promises run
		progress = make(chan struct{}, 1) // a promise ran
	)
	producers := make([]*producer.Producer, nprod)
	for i := range producers {
		p, err := producer.New(f, producer.MaxInFlight(1+rng.IntN(5)), producer.Linger(time.Duration(rng.IntN(2))*time.Millisecond),
			producer.RetryBackoff(time.Millisecond), producer.MetadataMaxAge(5*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		producers[i] = p
	}
	// Each producer writes until the driver is done (or it has written
	// churnRecords), drawing its records from a source of its own.
	stop := make(chan struct{})
	for i, p := range producers {
		prng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			for n := range churnRecords {
				select {
				case <-stop:
					return
				default:
				}
				out := &churnOutcome{value: fmt.Sprintf("p%d-%d-", i, n), large: prng.IntN(8) == 0, keyless: prng.IntN(4) == 0}
				r := &record.Record{Topic: "t", Value: []byte(out.value), Timestamp: time.UnixMilli(1_600_000_000_000 + int64(n))}
				if out.large {
					r.Value = append(r.Value, make([]byte, largeValue)...)
				}
				if !out.keyless {
					r.Key = []byte(out.value)
				}
				mu.Lock()
				outcomes = append(outcomes, out)
				mu.Unlock()
				p.Produce(ctx, r, func(r *record.Record, err error) {
					mu.Lock()
					out.err, out.partition, out.offset = err, r.Partition, r.Offset
					out.ts, out.tsType = r.Timestamp.UnixMilli(), r.TimestampType
					mu.Unlock()
					done.Add(1)
					select {
					case progress <- struct{}{}:
					default:
					}
				})
			}
		})
	}
	producing := make(chan struct{}) // closed once the producers have produced all they will
	go func() {
		wg.Wait()
		close(producing)
	}()
	// waitFor waits until n more promises have run, or none will.
	waitFor := func(n int64) {
		for want := done.Load() + n; done.Load() < want; {
			select {
			case <-progress:
			case <-producing:
				return
			case <-time.After(testkit.HangGuard):
				t.Fatalf("no promise ran, nor did the producing end, within %v", testkit.HangGuard)
			}
		}
	}

	// The driver: config changes (and now and then a growth) while the
	// producers write.
	changes := 10 + rng.IntN(15)
	policies := []log.CleanupPolicy{log.Delete, log.Compact, log.Delete | log.Compact}
	for range changes {
		maxBytes := []int{0, smallMax}[rng.IntN(2)]
		policy := policies[rng.IntN(len(policies))]
		tsType := []log.TimestampType{log.CreateTime, log.LogAppendTime}[rng.IntN(2)]
		segment := []int64{0, 4096}[rng.IntN(2)]
		clock.ms.Add(int64(1 + rng.IntN(1000)))
		if rng.IntN(6) == 0 && parts < 4 {
			parts++
			if err := b.CreatePartitions(ctx, "t", parts); err != nil {
				t.Fatalf("CreatePartitions: %v", err)
			}
		}
		err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
			c.MaxMessageBytes, c.CleanupPolicy, c.TimestampType, c.SegmentBytes = maxBytes, policy, tsType, segment
		})
		if err != nil {
			t.Fatalf("UpdateTopicConfig: %v", err)
		}
		waitFor(int64(rng.IntN(40))) // some records go under this config
	}
	close(stop)
	testkit.Await(t, producing, "the producing goroutine's end")
	for _, p := range producers {
		if err := p.Flush(ctx); err != nil {
			t.Fatalf("Flush: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}

	type at struct {
		partition int32
		offset    int64
	}
	inLog := map[string]*record.Record{}
	for _, r := range runneltest.ConsumeAll(t, b, "t") {
		v := string(r.Value)
		if len(v) > largeValue {
			v = v[:len(v)-largeValue]
		}
		if _, ok := inLog[v]; ok {
			t.Errorf("%q is in the log twice", v)
		}
		inLog[v] = r
	}
	mu.Lock()
	defer mu.Unlock()
	produced := map[string]bool{}
	counts := map[string]int{}
	for _, o := range outcomes {
		produced[o.value] = true
		r, there := inLog[o.value]
		maybe := errors.Is(o.err, producer.ErrMaybeWritten)
		switch {
		case o.err == nil:
			counts["ok"]++
			if !there {
				t.Errorf("%q: acknowledged at %d/%d, not in the log", o.value, o.partition, o.offset)
				continue
			}
			if got := (at{r.Partition, r.Offset}); got != (at{o.partition, o.offset}) {
				t.Errorf("%q: acknowledged at %d/%d, in the log at %d/%d", o.value, o.partition, o.offset, got.partition, got.offset)
			}
			if r.TimestampType != o.tsType || r.Timestamp.UnixMilli() != o.ts {
				t.Errorf("%q: acknowledged with timestamp %d (type %v), read with %d (type %v)",
					o.value, o.ts, o.tsType, r.Timestamp.UnixMilli(), r.TimestampType)
			}
		case there && !maybe:
			t.Errorf("%q: failed (%v), yet in the log at %d/%d", o.value, o.err, r.Partition, r.Offset)
		case errors.Is(o.err, producer.ErrRecordTooLarge):
			counts["too large"]++
			if !o.large && !maybe {
				t.Errorf("%q: a small record failed as too large: %v", o.value, o.err)
			}
		case errors.Is(o.err, log.ErrInvalidRecord):
			counts["invalid"]++
			if !o.keyless && !maybe {
				t.Errorf("%q: a record with a key failed as invalid: %v", o.value, o.err)
			}
		default:
			t.Errorf("%q: an unexpected error: %v", o.value, o.err)
		}
		if maybe {
			counts["maybe written"]++
		}
	}
	for v := range inLog {
		if !produced[v] {
			t.Errorf("%q is in the log, never produced", v)
		}
	}
	t.Logf("%d records, %d requests, %d config changes: %v", len(outcomes), requests.Load(), changes, counts)
}

type churnOut struct {
	value     string
	err       error
	partition int32
	offset    int64
}

// TestConfigChurnOnDiskKeepsAcked: on disk, config changes that reopen
// every partition's log — the fsync policy switched among SyncAlways,
// SyncPeriodic and SyncNever, segment.bytes, segment.index.bytes,
// index.interval.bytes, message.timestamp.type — and growths
// (CreatePartitions) while producers with each partitioner (sticky with
// keys, round robin; idempotent with requests in flight, and not) write,
// and the broker's maintenance runs every few ms (retention unlimited, so
// that nothing acknowledged may go): after a clean Close and an Open,
// every acknowledged record is in the log once, at the partition and
// offset its promise was told, and no record is there twice.
func TestConfigChurnOnDiskKeepsAcked(t *testing.T) {
	if testing.Short() {
		t.Skip("writes for a while on disk")
	}
	for seed := uint64(0); seed < 2; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runConfigChurnOnDisk(t, seed) })
	}
}

func runConfigChurnOnDisk(t *testing.T, seed uint64) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 33))
	cfg := runnel.Config{Dir: testkit.FastTempDir(t), MaintenanceInterval: 2 * time.Millisecond}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var outs []*churnOut
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
				o := &churnOut{value: fmt.Sprintf("p%d-%d", i, n)}
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
