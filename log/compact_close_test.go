package log

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCloseStopsCompaction: a Close (a config change's Reopen, a topic's
// deletion) that begins while a compaction runs makes it stop at its next
// read, with ErrClosed and nothing swapped in, instead of waiting for the
// whole pass, during which the partition's appends and reads wait for the
// Reopen. The log opens again whole.
func TestCloseStopsCompaction(t *testing.T) {
	var hook func(op vfs.Op, name string)
	cfg := Config{SegmentBytes: 300, CleanupPolicy: Compact}
	l, clock := hookedLog(t, cfg, &hook)
	ts := clock.Now().UnixMilli()
	for i := range 60 {
		appendOK(t, l, batchOf(t, compression.None, kv{key: fmt.Appendf(nil, "k%d", i%5), value: fmt.Appendf(nil, "v%d", i), ts: ts}))
	}
	require.NoError(t, l.Roll())
	want := readAll(t, l, 0)
	closed := make(chan error, 1)
	hook = func(op vfs.Op, name string) {
		if op != vfs.OpCreate || !strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			return
		}
		hook = nil
		go func() { closed <- l.Close() }()
		testkit.SpinUntil(t, l.closing.Load, "Close did not begin")
	}
	res, err := l.Compact(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	require.Zero(t, res.SegmentsRewritten, "the compaction went on after the Close began")
	require.NoError(t, testkit.Await(t, closed, "Close's answer"))

	l2, err := Open(l.Dir(), cfg, Options{FS: l.fs, Clock: clock})
	require.NoError(t, err)
	defer l2.Close()
	require.Equal(t, want, readAll(t, l2, 0))
	names, err := l.fs.List(l.Dir())
	require.NoError(t, err)
	for _, n := range names {
		require.NotContains(t, n, cleanedSuffix)
	}
}
