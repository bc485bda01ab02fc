package runnel_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestHighWatermarkAcrossSyncChanges: the fsync policy decides what the
// high watermark is (the durable offset under SyncAlways, the log end
// otherwise), and a config change reopens the log under the new one while
// appends go on, some of them with their acknowledgement awaited, some
// not. Through changes between SyncNever, SyncAlways and SyncPeriodic the
// high watermark a reader sees (ListOffset's latest, DescribeTopic's)
// never goes back, and every acknowledgement succeeds; at the end every
// record appended is below it.
func TestHighWatermarkAcrossSyncChanges(t *testing.T) {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{FS: vfs.NewMem(), Dir: "/d"})
	require.NoError(t, err)
	defer b.Close()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	stop := make(chan struct{})
	// appendedOne says an append went in since the last config change:
	// each change waits for one, so that appends run across every
	// change (the 150 changes used to be over before the producer's
	// first append, now and then, on a busy machine).
	appendedOne := make(chan struct{}, 1)
	var (
		wg, acks sync.WaitGroup
		appended int64
	)
	produced := make(chan struct{}) // closed once the producer returns (on an error, before stop)
	wg.Go(func() {
		defer close(produced)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			resp, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksLeader, Batches: closeMidBatch(t, fmt.Sprint(i))})
			if err != nil {
				t.Errorf("produce: %v", err)
				return
			}
			appended = resp.BaseOffset + 1
			select {
			case appendedOne <- struct{}{}:
			default:
			}
			if ack == nil {
				continue
			}
			wait := func() {
				if err := ack.Wait(ctx); err != nil {
					t.Errorf("acknowledgement of offset %d: %v", resp.BaseOffset, err)
				}
			}
			if i%3 == 0 {
				acks.Go(wait) // left to wait while the next ones go
			} else {
				wait()
			}
		}
	})
	wg.Go(func() {
		var last int64
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var hw int64
			if i%2 == 0 {
				lo, err := b.ListOffset(ctx, "t", 0, api.Latest)
				if err != nil {
					t.Errorf("ListOffset: %v", err)
					return
				}
				hw = lo.Offset
			} else {
				info, err := b.DescribeTopic(ctx, "t")
				if err != nil {
					t.Errorf("DescribeTopic: %v", err)
					return
				}
				hw = info.Partitions[0].HighWatermark
			}
			if hw < last {
				t.Errorf("the high watermark went back from %d to %d", last, hw)
			}
			last = hw
		}
	})
	policies := []log.SyncPolicy{log.SyncNever, log.SyncAlways, log.SyncPeriodic}
	for i := range 150 {
		select {
		case <-appendedOne:
		case <-produced: // it failed (t.Errorf): no append is to come
			close(stop)
			wg.Wait()
			t.FailNow()
		case <-time.After(testkit.HangGuard):
			t.Fatalf("no append came, nor the producing goroutine's end, within %v", testkit.HangGuard)
		}
		require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.Sync, c.FlushMessages = policies[i%3], 3 }))
	}
	close(stop)
	wg.Wait()
	acks.Wait()
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.Sync = log.SyncAlways }))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Positive(t, appended)
	require.Equal(t, appended, info.Partitions[0].HighWatermark, "every record appended is durable once the log was reopened")
}
