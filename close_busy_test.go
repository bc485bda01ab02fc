package runnel

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
)

// TestCloseWhileBusy: Close while every kind of call is under way on the
// broker — produces waiting for their fsync, long polls, offset look-ups,
// config changes that reopen the logs, partitions added, topics created
// and deleted, producer ids, maintenance — ends every one of them: each
// returns nil or ErrClosed (an admin call on the topic created and
// deleted alongside may also find it missing or there), none hangs, and
// no goroutine is left (goleak, TestMain).
func TestCloseWhileBusy(t *testing.T) {
	for _, store := range []string{"mem", "disk"} {
		t.Run(store, func(t *testing.T) {
			dir := ""
			if store == "disk" {
				if testing.Short() {
					t.Skip("-short: in memory only")
				}
				dir = t.TempDir()
			}
			for round := range 5 {
				closeWhileBusy(t, dir, round)
			}
		})
	}
}

func closeWhileBusy(t *testing.T, dir string, round int) {
	ctx := context.Background()
	b, err := Open(Config{Dir: dir})
	require.NoError(t, err)
	main := fmt.Sprintf("main%d", round)
	require.NoError(t, b.CreateTopic(ctx, main, log.TopicConfig{Partitions: 2}))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		started sync.WaitGroup
	)
	report := func(what string, err error, allowed ...error) bool {
		if err == nil {
			return false
		}
		if errors.Is(err, ErrClosed) {
			return true
		}
		for _, a := range allowed {
			if errors.Is(err, a) {
				return false
			}
		}
		mu.Lock()
		errs = append(errs, fmt.Errorf("%s: %w", what, err))
		mu.Unlock()
		return true
	}
	// worker calls f until it reports the end; it has started once its
	// first call returned.
	worker := func(name string, f func(i int) bool) {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if i == 1 {
					started.Done()
				}
				if f(i) {
					if i < 1 {
						started.Done()
					}
					return
				}
			}
		}()
	}
	for w := range 3 {
		worker("produce", func(i int) bool {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: main, Partition: int32(i % 2), Acks: api.AcksAll, Batches: batch(t, fmt.Sprint(w, i))})
			return report("produce", err)
		})
	}
	worker("produce async", func(i int) bool {
		_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: main, Partition: 1, Acks: api.AcksAll, Batches: batch(t, fmt.Sprint(i))})
		if report("produce async", err) {
			return true
		}
		if ack != nil {
			return report("ack", ack.Wait(ctx))
		}
		return false
	})
	for p := range 2 {
		var off int64
		worker("fetch", func(i int) bool {
			minBytes := 1 << 20 // a long poll, after a first fetch that ends at once
			if i == 0 {
				minBytes = 1
			}
			resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Minute, MinBytes: minBytes, Partitions: []api.FetchPartition{{Topic: main, Partition: int32(p), Offset: off}}})
			if report("fetch", err) {
				return true
			}
			if err := resp.Partitions[0].Err; err != nil {
				return report("fetch partition", err)
			}
			off = max(off, nextAfter(resp.Partitions[0].Records, off))
			return false
		})
	}
	worker("list offsets", func(i int) bool {
		_, err := b.ListOffset(ctx, main, int32(i%2), api.MaxTimestamp)
		if report("list max timestamp", err) {
			return true
		}
		_, err = b.DescribeTopic(ctx, main)
		return report("describe", err)
	})
	worker("alter", func(i int) bool {
		return report("alter", b.AlterTopicConfig(ctx, main, log.Config{RetentionTime: time.Duration(i+1) * time.Hour}))
	})
	worker("grow", func(i int) bool {
		return report("grow", b.CreatePartitions(ctx, main, 3+i), ErrInvalidPartitions)
	})
	worker("churn", func(i int) bool {
		if i%2 == 0 {
			return report("create", b.CreateTopic(ctx, "churn", log.TopicConfig{Partitions: 2}), ErrTopicExists)
		}
		return report("delete", b.DeleteTopic(ctx, "churn"), ErrUnknownTopic)
	})
	worker("pid", func(int) bool {
		_, _, err := b.InitProducerID(ctx)
		return report("pid", err)
	})
	worker("maintain", func(int) bool {
		return report("maintain", b.Maintain(ctx), ErrUnknownTopic, log.ErrClosed)
	})
	started.Wait()
	time.Sleep(time.Duration(round) * 5 * time.Millisecond) // deeper into the work, round by round
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testkit.HangGuard):
		t.Fatalf("round %d: calls still under way %v after Close", round, testkit.HangGuard)
	}
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))
	require.Empty(t, errs)
}
