package runnel_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
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
//
// The descriptors it bounds are those of the broker's directory (the
// process's others are logged): in the whole package the process held
// 303 more once, where the broker's files are 301 (its lock and three a
// partition), and the bound allows 302. On Close and DeleteTopic it waits
// for the process's count to come back as well, which a descriptor of
// the broker's outside its directory would keep up.
func TestScalePartitions(t *testing.T) {
	skipWithoutProcFD(t)
	ctx := context.Background()
	n := scalePartitions(t)
	dir := testkit.FastTempDir(t) // a produce's fsync to each partition, on a disk seconds of it
	fd0, g0, h0, m0 := openFiles(t), runtime.NumGoroutine(), leakcheck.LiveHeap(), mappings(t)
	measure := func(what string, start time.Time) {
		fd, g, h, m := openFiles(t), runtime.NumGoroutine(), leakcheck.LiveHeap(), mappings(t)
		own := filesUnder(t, dir)
		t.Logf("%d partitions, %s (%v): %d fds of the broker's directory (%.2f a partition; %d more in the process), %d goroutines, %d B heap (%.0f a partition), %d mappings",
			n, what, time.Since(start).Round(time.Millisecond), own, float64(own)/float64(n), fd-fd0, g-g0, h-h0, float64(h-h0)/float64(n), m-m0)
		require.LessOrEqual(t, own, int64(3*n+2), "%s: more than 3 descriptors an idle partition", what)
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
	require.Zero(t, filesUnder(t, dir), "Close releases every descriptor")
	fdsBackTo(t, fd0, "Close releases every descriptor")
	start = time.Now()
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	measure("reopened", start)

	// One partition with many sealed segments: one descriptor each, and
	// two mappings (its indexes).
	const segs = 50
	require.NoError(t, b.CreateTopic(ctx, "long", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 1 << 10, Sync: log.SyncNever}}))
	fd1, m1 := filesUnder(t, dir), mappings(t)
	for range segs * 8 { // 8 records of 100 B a segment of 1 KiB
		leakProduce(t, b, "long", 0, "", make([]byte, 100))
	}
	d, err := b.DescribeTopic(ctx, "long")
	require.NoError(t, err)
	fd2, m2 := filesUnder(t, dir), mappings(t)
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
	require.Equal(t, int64(1), filesUnder(t, dir), "DeleteTopic releases every descriptor (but the broker's lock)")
	fdsBackTo(t, fd0+1, "DeleteTopic releases every descriptor (but the broker's lock)")
	require.NoError(t, b.Close())
}

// filesUnder counts the process's descriptors open on files under dir
// (handlesUnder's, Linux only).
func filesUnder(t testing.TB, dir string) int64 {
	t.Helper()
	fds, _ := handlesUnder(t, dir)
	return int64(len(fds))
}

// fdsBackTo waits until the process holds at most want descriptors: a
// descriptor another goroutine holds for a moment (a test's before this
// one, a runtime's) closes, one the broker leaked does not. It fails
// after testkit.HangGuard, listing the descriptors.
func fdsBackTo(t testing.TB, want int64, msg string) {
	t.Helper()
	deadline := time.Now().Add(testkit.HangGuard)
	for openFiles(t) > want {
		if time.Now().After(deadline) {
			names, err := os.ReadDir("/proc/self/fd")
			require.NoError(t, err)
			var open []string
			for _, e := range names {
				target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
				open = append(open, e.Name()+" -> "+target)
			}
			t.Fatalf("%s: %d descriptors open, want at most %d: %s", msg, openFiles(t), want, strings.Join(open, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
