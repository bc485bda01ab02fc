package runnel_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/log"
)

// scalePartitions is the partition count of TestScalePartitions: 100, or
// RUNNEL_SCALE_PARTITIONS for a larger run (5000 takes about 15 s on disk
// on a 2-core VM, most of it CreateTopic's fsyncs).
func scalePartitions(t *testing.T) int {
	if v := os.Getenv("RUNNEL_SCALE_PARTITIONS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err, "RUNNEL_SCALE_PARTITIONS")
		return n
	}
	return 100
}

// TestScalePartitions measures what an idle partition holds, with many of
// them on disk, and checks it against what the design says: an idle
// partition costs no goroutine (the broker has one maintenance goroutine,
// whatever its partitions), three file descriptors (its active segment's
// .log, .index and .timeindex: the active index is written with WriteAt)
// and a sealed segment one (its .log: its indexes are mapped read-only
// and their files closed), and a few KiB of heap; after the broker's Close
// every descriptor is released, and a clean Open takes the same again.
// It logs the figures (go test -run TestScalePartitions -v).
func TestScalePartitions(t *testing.T) {
	skipWithoutProcFD(t)
	ctx := context.Background()
	n := scalePartitions(t)
	dir := t.TempDir()
	fd0, g0, h0, m0 := openFiles(t), runtime.NumGoroutine(), leakcheck.LiveHeap(), mappings(t)
	measure := func(what string, start time.Time) {
		fd, g, h, m := openFiles(t), runtime.NumGoroutine(), leakcheck.LiveHeap(), mappings(t)
		t.Logf("%d partitions, %s (%v): %d fds (%.2f a partition), %d goroutines, %d B heap (%.0f a partition), %d mappings",
			n, what, time.Since(start).Round(time.Millisecond), fd-fd0, float64(fd-fd0)/float64(n), g-g0, h-h0, float64(h-h0)/float64(n), m-m0)
		require.LessOrEqual(t, fd-fd0, int64(3*n+2), "%s: more than 3 descriptors an idle partition", what)
		require.LessOrEqual(t, g-g0, 2, "%s: goroutines grow with the partitions", what)
		require.LessOrEqual(t, (h-h0)/int64(n), int64(16<<10), "%s: more than 16 KiB a partition", what)
	}
	start := time.Now()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "many", log.TopicConfig{Partitions: n}))
	measure("created", start)
	start = time.Now()
	for i := range n {
		leakProduce(t, b, "many", int32(i), "", make([]byte, 100))
	}
	measure("a record each", start)
	start = time.Now()
	require.NoError(t, b.Maintain(ctx))
	measure("maintained", start)
	start = time.Now()
	require.NoError(t, b.Close())
	t.Logf("closed (%v)", time.Since(start).Round(time.Millisecond))
	require.Equal(t, fd0, openFiles(t), "Close releases every descriptor")
	start = time.Now()
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	measure("reopened", start)

	// One partition with many sealed segments: one descriptor each, and
	// two mappings (its indexes).
	const segs = 50
	require.NoError(t, b.CreateTopic(ctx, "long", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 1 << 10, Sync: log.SyncNever}}))
	fd1, m1 := openFiles(t), mappings(t)
	for range segs * 8 { // 8 records of 100 B a segment of 1 KiB
		leakProduce(t, b, "long", 0, "", make([]byte, 100))
	}
	d, err := b.DescribeTopic(ctx, "long")
	require.NoError(t, err)
	fd2, m2 := openFiles(t), mappings(t)
	names, err := os.ReadDir(filepath.Join(dir, "long-0"))
	require.NoError(t, err)
	nseg := 0
	for _, e := range names {
		if filepath.Ext(e.Name()) == ".log" {
			nseg++
		}
	}
	require.Greater(t, nseg, segs)
	t.Logf("a partition of %d bytes in %d segments of 1 KiB: %d more fds, %d more mappings", d.Partitions[0].Size, nseg, fd2-fd1, m2-m1)
	require.LessOrEqual(t, fd2-fd1, int64(nseg+2), "more than one descriptor a sealed segment")
	start = time.Now()
	require.NoError(t, b.DeleteTopic(ctx, "many"))
	require.NoError(t, b.DeleteTopic(ctx, "long"))
	t.Logf("deleted (%v)", time.Since(start).Round(time.Millisecond))
	require.Equal(t, fd0+1, openFiles(t), "DeleteTopic releases every descriptor (but the broker's lock)")
	require.NoError(t, b.Close())
}
