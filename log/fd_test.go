package log

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// openFDs counts the process's open file descriptors, or skips the test
// where the system does not list them.
func openFDs(t *testing.T) int {
	t.Helper()
	if runtime.GOOS == "windows" {
		// Windows has neither; under Wine (.ci/windows-wine) the
		// Linux /proc/self/fd of the Wine process is found, whose
		// descriptors are Wine's and not the Windows handles counted
		// here.
		t.Skip("no descriptors to count on Windows")
	}
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if names, err := os.ReadDir(dir); err == nil {
			return len(names)
		}
	}
	t.Skip("no /proc/self/fd or /dev/fd to count descriptors in")
	return 0
}

// TestSealedSegmentsHoldOneDescriptor: a sealed segment keeps its .log
// open, and its indexes mapped (or copied) with their files closed, so
// that a log of n segments holds n+2 descriptors (the active segment's
// three), across reopen, truncation into a sealed segment, rolls,
// compaction's swap, retention and the rebuild of a missing index; and
// none once closed. (Before, every segment held three: a service on
// macOS, whose default limit is 256, fitted about 25 partitions.)
func TestSealedSegmentsHoldOneDescriptor(t *testing.T) {
	dir := t.TempDir()
	clock := newClock()
	cfg := Config{SegmentBytes: 1000, IndexIntervalBytes: 200, CleanupPolicy: Compact | Delete, Sync: SyncNever}
	open := func() *Log {
		t.Helper()
		l, err := Open(dir, cfg, Options{FS: vfs.OS, Clock: clock})
		require.NoError(t, err)
		return l
	}
	appendN := func(l *Log, n int) {
		t.Helper()
		for i := range n {
			appendOK(t, l, batchOf(t, 0,
				kv{key: fmt.Appendf(nil, "k%d", i%5), value: fmt.Appendf(nil, "value %d with some bytes", i), ts: clock.Now().UnixMilli()},
				kv{key: fmt.Appendf(nil, "k%d", i%7), value: fmt.Appendf(nil, "value %d.1", i), ts: clock.Now().UnixMilli()}))
		}
	}
	base := openFDs(t)
	check := func(l *Log, what string) {
		t.Helper()
		n := l.Segments()
		require.Greater(t, n, 5, what)
		got := openFDs(t) - base
		t.Logf("%s: %d segments, %d descriptors", what, n, got)
		require.LessOrEqual(t, got, n+2, "%s: %d segments hold %d descriptors", what, n, got)
		readUntilEnd(t, l)
	}

	l := open()
	appendN(l, 150)
	check(l, "appended")
	require.NoError(t, l.Close())
	require.Equal(t, base, openFDs(t), "closed")

	l = open()
	check(l, "reopened")
	segs := *l.segs.Load()
	_, err := l.TruncateTo(segs[len(segs)/2].Base() + 1) // the segment unseals: its indexes open their files again
	require.NoError(t, err)
	check(l, "truncated into a sealed segment")
	appendN(l, 100)
	check(l, "rolled on")

	clock.Advance(time.Hour)
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.SegmentsRewritten)
	check(l, "compacted")
	_, err = l.DeleteRecordsBefore(context.Background(), segs[2].Base())
	require.NoError(t, err)
	check(l, "after deleting records")
	victim := (*l.segs.Load())[1].Base()
	require.NoError(t, l.Close())
	require.Equal(t, base, openFDs(t), "closed")

	// A missing index is rebuilt by Recover, which reopens the index files
	// of the sealed segment to write them, and closes them again.
	require.NoError(t, os.Remove(filepath.Join(dir, segment.FileName(victim, segment.IndexSuffix))))
	l = open()
	require.Equal(t, 1, l.Recovery().SegmentsScanned)
	check(l, "rebuilt an index")
	require.NoError(t, l.Close())
	require.Equal(t, base, openFDs(t), "closed")
}

// readUntilEnd reads every batch of l, from its start.
func readUntilEnd(t *testing.T, l *Log) {
	t.Helper()
	for off := l.LogStartOffset(); off < l.LogEndOffset(); {
		data, err := l.Read(off, 1<<20, l.LogEndOffset())
		require.NoError(t, err)
		require.NotEmpty(t, data, "read at %d", off)
		for b, err := range record.Batches(data) {
			require.NoError(t, err)
			off = max(off, b.NextOffset())
		}
	}
}
