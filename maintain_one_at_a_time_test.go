package runnel

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// The cleaner's key map takes up to CleanerMapBytes, "the cleaner's
// memory for the whole broker" since a broker compacts one partition at
// a time: also when Maintain calls overlap each other or the broker's
// own maintenance. Each partition's maintenance took no turn, so that
// two calls compacted two partitions at once, each with its key map (8
// MiB each here: the heap held 16 MiB more while both were about to
// write their cleaned segments; the test fails so on the code before the
// fix, the second compaction reaching that point too). Now the second
// waits for the first. Under the race detector a quarter of it all (2
// MiB key maps, 100,000 keys a partition, 256 KiB segments): what it
// checks, that the second compaction waits, does not depend on the size.
func TestMaintainCompactsOnePartitionAtATime(t *testing.T) {
	mapBytes, batches, segBytes := int64(8<<20), 400, int64(1<<20)
	if testkit.RaceEnabled {
		mapBytes, batches, segBytes = 2<<20, 100, 256<<10
	}
	entered := make(chan string, 2)
	release := make(chan struct{})
	inj := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasSuffix(name, ".log.cleaned") {
			select {
			case <-release: // the test is over
			case entered <- name: // the key map is built, and held
				<-release
			}
		}
		return nil
	})
	b := open(t, Config{FS: vfs.WithFaults(vfs.NewMem(), inj), MaintenanceInterval: time.Hour, CleanerMapBytes: mapBytes,
		TopicDefaults: log.Config{Sync: log.SyncNever}})
	releaseAll := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseAll) // before open's Close: a failing test frees the held compaction, or Close waits for it
	ctx := context.Background()
	// 400,000 distinct keys a partition (batches of 1000), in sealed
	// segments: a key map of CleanerMapBytes each.
	var parts []*log.Partition
	for _, topic := range []string{"a", "b"} {
		require.NoError(t, b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: 1,
			Config: log.Config{CleanupPolicy: log.Compact, SegmentBytes: segBytes}}))
		for i := range batches {
			var bl record.Builder
			for j := range 1000 {
				bl.Append(time.Now().UnixMilli(), fmt.Appendf(nil, "%d", i*1000+j), nil, nil)
			}
			batch, err := bl.Finish(compression.None)
			require.NoError(t, err)
			_, err = b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: 0, Acks: api.AcksAll, Batches: batch})
			require.NoError(t, err)
		}
		p, err := b.partition(ctx, topic, 0, false)
		require.NoError(t, err)
		parts = append(parts, p)
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := int64(ms.HeapInuse)

	waits := make(chan struct{}, 1)
	testHookMaintainWaits = func() { waits <- struct{}{} }
	t.Cleanup(func() { testHookMaintainWaits = nil })
	done := make(chan error, 2)
	go func() { _, err := b.maintainPartition(ctx, parts[0], nil); done <- err }()
	testkit.AwaitHold(t, entered, done, "the first maintainPartition")
	go func() { _, err := b.maintainPartition(ctx, parts[1], nil); done <- err }()
	select {
	case <-waits: // the fix: the second waits for the first
	case name := <-entered:
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		t.Errorf("two compactions at once (the second about to write %s): the heap holds %.1f MiB more, with CleanerMapBytes %d MiB",
			name, float64(int64(ms.HeapInuse)-before)/(1<<20), mapBytes>>20)
	case <-time.After(testkit.HangGuard):
		t.Fatalf("the second maintainPartition neither waited for its turn nor began its compaction within %v", testkit.HangGuard)
	}
	releaseAll()
	require.NoError(t, testkit.Await(t, done, "a maintainPartition's answer"))
	require.NoError(t, testkit.Await(t, done, "a maintainPartition's answer"))
}

// A Maintain waiting for its turn (another partition's maintenance under
// way) ends with its ctx, with ctx's error, and with the broker's Close,
// with ErrClosed; the partitions it had left are not maintained, and
// nothing waits for the turn it never took.
func TestMaintainWaitingForItsTurnEnds(t *testing.T) {
	b := open(t, Config{MaintenanceInterval: time.Hour})
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	waits := make(chan struct{}, 1)
	testHookMaintainWaits = func() { waits <- struct{}{} }
	t.Cleanup(func() { testHookMaintainWaits = nil })

	b.maint <- struct{}{} // another partition's maintenance under way
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Maintain(cctx) }()
	testkit.AwaitHold(t, waits, done, "the Maintain to end with its ctx")
	cancel()
	require.ErrorIs(t, testkit.Await(t, done, "Maintain's answer"), context.Canceled)
	<-b.maint // that maintenance ends: the turn is free, none taken
	require.NoError(t, b.Maintain(ctx), "the turn was given back")

	b.maint <- struct{}{}
	go func() { done <- b.Maintain(ctx) }()
	testkit.AwaitHold(t, waits, done, "the Maintain to end with Close")
	require.NoError(t, b.Close())
	require.ErrorIs(t, testkit.Await(t, done, "Maintain's answer"), ErrClosed)
}
