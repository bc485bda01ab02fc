package runnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// swappingClient is a consumer.Client over the current broker of a
// readersBroker, which the test closes and opens again under it.
type swappingClient struct{ rb *readersBroker }

var errNoBroker = errors.New("no broker")

func (c swappingClient) Partitions(ctx context.Context, topic string) (n int, err error) {
	err = errNoBroker
	c.rb.do(func(b *Broker) { n, err = b.Partitions(ctx, topic) })
	return n, err
}

func (c swappingClient) ListOffset(ctx context.Context, topic string, partition int32, ts int64) (lo api.ListedOffset, err error) {
	err = errNoBroker
	c.rb.do(func(b *Broker) { lo, err = b.ListOffset(ctx, topic, partition, ts) })
	return lo, err
}

func (c swappingClient) Fetch(ctx context.Context, req *api.FetchRequest) (resp api.FetchResponse, err error) {
	err = errNoBroker
	c.rb.do(func(b *Broker) { resp, err = b.Fetch(ctx, req) })
	return resp, err
}

// TestHighWatermarkRealTime checks the high watermark's real-time
// guarantees without a crash, under each sync policy and with the policy
// changed as it goes: once an acks=all produce is acknowledged, a
// ListOffset latest, a DescribeTopic and a Fetch from its offset that start
// after the acknowledgement see it (the high watermark is at or past its
// end); the high watermarks a sequence of calls sees (ListOffset latest,
// DescribeTopic, Fetch) never go back, across AlterTopicConfig reopens,
// CreatePartitions, Maintain, DeleteRecords, an fsync that fails (the
// fence) and the broker's Close and Open (which writes the fenced tail
// anew); and a consumer tailing the topic through all that never reports
// a negative Lag.
//
// go test runs a few seeds per mode; RUNNEL_HW_REALTIME=N runs N.
func TestHighWatermarkRealTime(t *testing.T) {
	n := 3
	if testing.Short() {
		n = 1
	}
	if s := os.Getenv("RUNNEL_HW_REALTIME"); s != "" {
		v, err := strconv.Atoi(s)
		require.NoError(t, err)
		n = v
	}
	modes := []log.SyncPolicy{log.SyncAlways, log.SyncPeriodic, log.SyncNever, log.SyncDefault}
	for _, mode := range modes {
		for seed := range uint64(n) {
			name := mode.String()
			if mode == log.SyncDefault {
				name = "changing"
			}
			t.Run(fmt.Sprintf("%s/%d", name, seed), func(t *testing.T) { runHWRealTime(t, mode, seed) })
		}
	}
}

// runHWRealTime runs one case: mode SyncDefault changes the policy with
// each config change.
func runHWRealTime(t *testing.T, mode log.SyncPolicy, seed uint64) {
	ctx := context.Background()
	mem := vfs.NewMem()
	var armed atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
	rb := &readersBroker{cfg: Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour}}
	b, err := Open(rb.cfg)
	require.NoError(t, err)
	rb.b = b
	defer func() { rb.b.Close() }()
	policies := []log.SyncPolicy{log.SyncAlways, log.SyncPeriodic, log.SyncNever}
	cfgOf := func(rng *rand.Rand) log.Config {
		c := log.Config{Sync: mode, SegmentBytes: int64(300 + rng.IntN(1000)), FlushMessages: int64(1 + rng.IntN(5))}
		if mode == log.SyncDefault {
			c.Sync = policies[rng.IntN(len(policies))]
		}
		if rng.IntN(3) == 0 {
			c.RetentionBytes = int64(1000 + rng.IntN(3000))
		}
		return c
	}
	rng0 := rand.New(rand.NewPCG(seed, 1))
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: cfgOf(rng0)}))

	var (
		mu    sync.Mutex
		errs  []string
		stop  atomic.Bool
		wg    sync.WaitGroup
		acked atomic.Int64
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, fmt.Sprintf(format, args...))
		stop.Store(true)
	}
	const produces = 300
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(10+w)))
			for i := 0; i < produces && !stop.Load(); i++ {
				n := 1 + rng.IntN(3)
				vals := make([]string, n)
				for j := range vals {
					vals[j] = fmt.Sprintf("w%d-%d-%d", w, i, j)
				}
				data, err := crashBatch(vals, -1, 0)
				if err != nil {
					fail("encode: %v", err)
					return
				}
				rb.do(func(b *Broker) {
					parts, err := b.Partitions(ctx, "t")
					if err != nil {
						return
					}
					p := int32(rng.IntN(parts))
					resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: data})
					if err != nil {
						return
					}
					acked.Add(1)
					end := resp.BaseOffset + int64(n)
					if lo, err := b.ListOffset(ctx, "t", p, api.Latest); err == nil && lo.Offset < end {
						fail("t-%d: ListOffset latest %d after the acknowledgement of offsets %d to %d", p, lo.Offset, resp.BaseOffset, end-1)
					}
					if info, err := b.DescribeTopic(ctx, "t"); err == nil && info.Partitions[p].HighWatermark < end {
						fail("t-%d: DescribeTopic's high watermark %d after the acknowledgement of offsets %d to %d", p, info.Partitions[p].HighWatermark, resp.BaseOffset, end-1)
					}
					fr, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 16, Partitions: []api.FetchPartition{{Topic: "t", Partition: p, Offset: resp.BaseOffset, MaxBytes: 1 << 16}}})
					if err != nil {
						return
					}
					fp := fr.Partitions[0]
					switch {
					case errors.Is(fp.Err, log.ErrOffsetOutOfRange) && fp.LogStartOffset > resp.BaseOffset:
						// Deleted since.
					case fp.Err != nil:
						if !errors.Is(fp.Err, log.ErrLogFenced) && !errors.Is(fp.Err, ErrClosed) {
							fail("t-%d: fetch of acknowledged offset %d: %v", p, resp.BaseOffset, fp.Err)
						}
					case fp.HighWatermark < end:
						fail("t-%d: fetch's high watermark %d after the acknowledgement of offsets %d to %d", p, fp.HighWatermark, resp.BaseOffset, end-1)
					default:
						got := map[int64]string{}
						for bt, err := range record.Batches(fp.Records) {
							if err != nil {
								break
							}
							for r, err := range bt.Records() {
								if err == nil {
									got[r.Offset] = string(r.Value)
								}
							}
						}
						if v, ok := got[resp.BaseOffset]; (ok || fp.LogStartOffset <= resp.BaseOffset) && v != vals[0] {
							fail("t-%d: fetch of acknowledged offset %d read %q, want %q", p, resp.BaseOffset, v, vals[0])
						}
					}
				})
			}
		})
	}
	// An idempotent producer whose first attempt's acknowledgement is
	// not waited for: its retry, answered as a duplicate, is an
	// acknowledgement like any other.
	wg.Go(func() {
		pid, seq := int64(-1), int32(0)
		for i := 0; i < produces/3 && !stop.Load(); i++ {
			rb.do(func(b *Broker) {
				if pid < 0 {
					id, _, err := b.InitProducerID(ctx)
					if err != nil {
						return
					}
					pid, seq = id, 0
				}
				vals := []string{fmt.Sprintf("idem %d/%d", pid, seq)}
				data, err := crashBatch(vals, pid, seq)
				if err != nil {
					fail("encode: %v", err)
					return
				}
				first := slices.Clone(data)
				if _, _, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: first}); err != nil {
					pid = -1
					return
				}
				resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data})
				if err != nil {
					pid = -1
					return
				}
				seq++
				if !resp.Duplicate {
					fail("t-0: the retry of idempotent batch %d/%d was appended again at %d", pid, seq-1, resp.BaseOffset)
				}
				end := resp.BaseOffset + 1
				if lo, err := b.ListOffset(ctx, "t", 0, api.Latest); err == nil && lo.Offset < end {
					fail("t-0: ListOffset latest %d after the acknowledgement of duplicate offset %d", lo.Offset, resp.BaseOffset)
				}
				if info, err := b.DescribeTopic(ctx, "t"); err == nil && info.Partitions[0].HighWatermark < end {
					fail("t-0: DescribeTopic's high watermark %d after the acknowledgement of duplicate offset %d", info.Partitions[0].HighWatermark, resp.BaseOffset)
				}
			})
		}
	})
	producersDone := make(chan struct{})
	go func() {
		wg.Wait()
		close(producersDone)
	}()
	finished := func() bool {
		select {
		case <-producersDone:
			return true
		default:
			return stop.Load()
		}
	}
	var others sync.WaitGroup
	// The observer: a sequence of calls whose high watermarks never go back.
	others.Go(func() {
		last := map[int32]int64{}
		see := func(what string, p int32, hw int64) {
			if hw < last[p] {
				fail("t-%d: %s's high watermark %d after %d", p, what, hw, last[p])
			}
			last[p] = max(last[p], hw)
		}
		for !finished() {
			rb.do(func(b *Broker) {
				info, err := b.DescribeTopic(ctx, "t")
				if err != nil {
					return
				}
				for _, pi := range info.Partitions {
					see("DescribeTopic", pi.Partition, pi.HighWatermark)
					if lo, err := b.ListOffset(ctx, "t", pi.Partition, api.Latest); err == nil {
						see("ListOffset latest", pi.Partition, lo.Offset)
					}
					fr, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 10, Partitions: []api.FetchPartition{{Topic: "t", Partition: pi.Partition, Offset: max(last[pi.Partition]-1, 0), MaxBytes: 1 << 10}}})
					if err == nil && fr.Partitions[0].Err == nil {
						see("Fetch", pi.Partition, fr.Partitions[0].HighWatermark)
					}
				}
			})
		}
	})
	// The consumer, through the closes and opens.
	others.Go(func() {
		c, err := consumer.New(swappingClient{rb}, consumer.FetchMaxWait(time.Millisecond), consumer.RetryBackoff(time.Millisecond), consumer.ResetOffset(consumer.ResetEarliest))
		if err != nil {
			fail("consumer: %v", err)
			return
		}
		defer c.Close()
		for p := range int32(2) {
			if err := c.Assign("t", p, consumer.Start()); err != nil {
				fail("assign: %v", err)
				return
			}
		}
		for !finished() {
			pctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_, err := c.Poll(pctx)
			cancel()
			_ = err // retriable errors and timeouts: the Lag is checked all the same
			for p := range int32(2) {
				if lag, ok := c.Lag("t", p); ok && lag < 0 {
					pos, _ := c.Position("t", p)
					fail("t-%d: consumer lag %d (position %d)", p, lag, pos)
				}
			}
		}
	})
	// The admin.
	others.Go(func() {
		rng := rand.New(rand.NewPCG(seed, 50))
		for !finished() {
			switch rng.IntN(7) {
			case 0:
				cfg := cfgOf(rng)
				rb.do(func(b *Broker) { b.AlterTopicConfig(ctx, "t", cfg) })
			case 1:
				rb.do(func(b *Broker) {
					if n, err := b.Partitions(ctx, "t"); err == nil && n < 4 {
						b.CreatePartitions(ctx, "t", n+1)
					}
				})
			case 2:
				rb.do(func(b *Broker) { b.Maintain(ctx) })
			case 3:
				rb.do(func(b *Broker) {
					p := int32(rng.IntN(2))
					if lo, err := b.ListOffset(ctx, "t", p, api.Earliest); err == nil {
						b.DeleteRecords(ctx, "t", p, lo.Offset+int64(rng.IntN(3)))
					}
				})
			case 4:
				armed.Store(true)
			case 5:
				rb.mu.Lock()
				rb.b.Close() // fails for a fenced log: the next Open rewrites its tail
				b, err := Open(rb.cfg)
				if err != nil && errors.Is(err, vfs.ErrInjected) {
					// The armed fsync failed in Open's: a second Open
					// writes the tail anew.
					b, err = Open(rb.cfg)
				}
				if err != nil {
					fail("open: %v", err)
					rb.mu.Unlock()
					return
				}
				rb.b = b
				rb.mu.Unlock()
			case 6:
				runtime.Gosched()
			}
		}
	})
	testkit.Await(t, producersDone, "the producers' end")
	others.Wait()
	require.Empty(t, errs)
	t.Logf("%d produces acknowledged", acked.Load())
}
