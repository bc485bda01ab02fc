package runnel_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestAdminWhileProducingAndConsuming runs the broker's admin calls while
// producers and consumers work the same topic: the topic's config altered
// (each partition's log closed and reopened) again and again, its
// partitions grown, records deleted from its start, and another topic
// created and deleted alongside. It checks that
//
//   - no produce fails: the admin calls are invisible to producers;
//   - every acknowledged record is in the log exactly once, at the
//     partition and offset its promise reported (unless DeleteRecords
//     removed it), and the log holds nothing else;
//   - each consumer sees each partition's offsets strictly increasing
//     (no duplicate, no going back), the records it sees being the ones
//     produced at those offsets.
//
// Run it with -race; -short runs fewer records.
func TestAdminWhileProducingAndConsuming(t *testing.T) {
	for _, store := range []string{"mem", "disk"} {
		t.Run(store, func(t *testing.T) {
			if store == "disk" && testing.Short() {
				t.Skip("-short: in memory only")
			}
			dir := ""
			if store == "disk" {
				dir = t.TempDir()
			}
			testAdminWhileWorking(t, dir)
		})
	}
}

func testAdminWhileWorking(t *testing.T, dir string) {
	const (
		topic     = "s"
		producers = 3
		startN    = 2
		maxN      = 4
	)
	// The admin makes adminSteps calls, each after the producers have
	// produced stepRecords more records, and the producers produce until
	// the admin is done, never more than two steps ahead of it.
	adminSteps, stepRecords := 100, int64(300) // each call 25 times, DeleteRecords on each partition several
	if testing.Short() {
		adminSteps = 40
	}
	var producing, adminAt atomic.Int64
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	segCfg := func(i int) log.Config { return log.Config{SegmentBytes: int64(4096 * (1 + i%2))} }
	require.NoError(t, b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: startN, Config: segCfg(0)}))

	type at struct {
		p   int32
		off int64
	}
	var (
		mu     sync.Mutex
		acked  = map[string]at{} // value -> where its promise put it
		failed []error
	)

	// Consumers: each reads the initial partitions from the start until
	// told to stop, checking offsets per partition.
	consumeCtx, stopConsumers := context.WithCancel(ctx)
	defer stopConsumers()
	type seen struct {
		p     int32
		off   int64
		value string
	}
	var cwg sync.WaitGroup
	consumed := make([][]seen, 2)
	cerrs := make([]error, 2)
	for i := range consumed {
		c, err := consumer.New(b, consumer.FetchMaxWait(5*time.Millisecond), consumer.ResetOffset(consumer.ResetEarliest))
		require.NoError(t, err)
		defer c.Close()
		for p := range int32(startN) {
			require.NoError(t, c.Assign(topic, p, consumer.Start()))
		}
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			last := map[int32]int64{}
			for r, err := range c.Records(consumeCtx) {
				if err != nil && err == consumeCtx.Err() {
					return // the last: the test ends the loop so
				}
				if err == nil {
					if prev, ok := last[r.Partition]; ok && r.Offset <= prev {
						err = fmt.Errorf("partition %d: offset %d after %d", r.Partition, r.Offset, prev)
					}
				}
				mu.Lock()
				if err != nil {
					cerrs[i] = err
					mu.Unlock()
					return
				}
				last[r.Partition] = r.Offset
				consumed[i] = append(consumed[i], seen{r.Partition, r.Offset, string(r.Value)})
				mu.Unlock()
			}
		}()
	}

	// Admin: alter, grow, delete records, and a second topic, adminSteps
	// calls in all, then it closes adminDone.
	adminDone := make(chan struct{})
	var adminErr error
	deletedBefore := map[int32]int64{}
	go func() {
		defer close(adminDone)
		n := startN
		for i := range adminSteps {
			adminAt.Store(int64(i))
			for producing.Load() < int64(i)*stepRecords {
				time.Sleep(100 * time.Microsecond)
			}
			var err error
			switch i % 4 {
			case 0:
				err = b.AlterTopicConfig(ctx, topic, segCfg(i))
			case 1:
				if n < maxN {
					n++
					err = b.CreatePartitions(ctx, topic, n)
				}
			case 2:
				p := int32(i/4) % int32(n)
				var info runnel.TopicInfo
				if info, err = b.DescribeTopic(ctx, topic); err == nil {
					before := info.Partitions[p].HighWatermark / 2
					var low int64
					if low, err = b.DeleteRecords(ctx, topic, p, before); err == nil {
						mu.Lock()
						deletedBefore[p] = max(deletedBefore[p], low)
						mu.Unlock()
					}
				}
			case 3:
				if err = b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 2}); err == nil {
					err = b.DeleteTopic(ctx, "other")
				}
			}
			if err != nil {
				adminErr = fmt.Errorf("admin step %d: %w", i, err)
				return
			}
		}
	}()

	// Producers: keyed records, so that the grown partitions get some,
	// until the admin is done.
	var pwg sync.WaitGroup
	produced := make([]int, producers)
	for w := range producers {
		p, err := producer.New(b, producer.Linger(time.Millisecond), producer.MetadataMaxAge(20*time.Millisecond))
		require.NoError(t, err)
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			defer p.Close()
			for i := 0; ; i++ {
				done := false
				for !done && producing.Load() > (adminAt.Load()+2)*stepRecords {
					select {
					case <-adminDone:
						done = true
					case <-time.After(100 * time.Microsecond):
					}
				}
				select {
				case <-adminDone:
					done = true
				default:
				}
				if done {
					produced[w] = i
					break
				}
				v := fmt.Sprintf("w%d-%d", w, i)
				p.Produce(ctx, &record.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(r *record.Record, err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed = append(failed, fmt.Errorf("%s: %w", v, err))
						return
					}
					acked[v] = at{r.Partition, r.Offset}
				})
				producing.Add(1)
			}
			if err := p.Flush(ctx); err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
		}()
	}
	pwg.Wait()
	require.NoError(t, adminErr)
	if len(failed) > 0 {
		t.Fatalf("%d produces failed; the first: %v", len(failed), failed[0])
	}
	total := 0
	for _, n := range produced {
		total += n
	}
	require.Len(t, acked, total)
	t.Logf("%d records acknowledged during %d admin calls", total, adminSteps)

	// The log holds exactly the acknowledged records, where they were
	// acknowledged, from each partition's start.
	info, err := b.DescribeTopic(ctx, topic)
	require.NoError(t, err)
	inLog := map[at]string{}
	for _, pi := range info.Partitions {
		require.GreaterOrEqual(t, pi.LogStartOffset, deletedBefore[pi.Partition])
		for off := pi.LogStartOffset; off < pi.HighWatermark; {
			resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: topic, Partition: pi.Partition, Offset: off, MaxBytes: 1 << 20}}})
			require.NoError(t, err)
			require.NoError(t, resp.Partitions[0].Err)
			for bt, err := range record.Batches(resp.Partitions[0].Records) {
				require.NoError(t, err)
				for r, err := range bt.Records() {
					require.NoError(t, err)
					if r.Offset < off {
						continue
					}
					require.Equal(t, off, r.Offset)
					inLog[at{pi.Partition, off}] = string(r.Value)
					off++
				}
			}
		}
	}
	starts := map[int32]int64{}
	for _, pi := range info.Partitions {
		starts[pi.Partition] = pi.LogStartOffset
	}
	for v, a := range acked {
		if a.off < starts[a.p] {
			continue // deleted
		}
		require.Equal(t, v, inLog[a], "the record acknowledged at %d/%d", a.p, a.off)
	}
	kept := 0
	for _, a := range acked {
		if a.off >= starts[a.p] {
			kept++
		}
	}
	require.Len(t, inLog, kept, "the log holds a record nobody acknowledged, or one twice")

	// The consumers caught up on the initial partitions; what they saw is
	// what the producers put there.
	want := map[int32]int64{}
	for p := range int32(startN) {
		want[p] = info.Partitions[p].HighWatermark
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := range consumed {
			if cerrs[i] != nil {
				return true
			}
			got := map[int32]int64{}
			for _, s := range consumed[i] {
				got[s.p] = s.off + 1
			}
			for p, hw := range want {
				if got[p] < hw {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond)
	stopConsumers()
	cwg.Wait()
	for i := range consumed {
		require.NoError(t, cerrs[i], "consumer %d", i)
		for _, s := range consumed[i] {
			a, ok := acked[s.value]
			require.True(t, ok, "consumer %d read %q, never acknowledged", i, s.value)
			require.Equal(t, at{s.p, s.off}, a, "consumer %d read %q", i, s.value)
		}
	}
}
