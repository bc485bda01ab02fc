package log

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestMaintainCtxEndedDuringRetentionIsReported: a ctx that ends while
// Maintain's retention removes segments (the retention itself done) ends
// the compaction that would follow, and Maintain returns ctx's error:
// the work it skipped is not reported as done.
func TestMaintainCtxEndedDuringRetentionIsReported(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var hook func(op vfs.Op, name string)
	l, clock := hookedLog(t, Config{SegmentBytes: 200, RetentionTime: time.Minute, CleanupPolicy: Compact | Delete}, &hook)
	for range 6 {
		appendOK(t, l, keyedBatch(t, "k"))
	}
	clock.Advance(2 * time.Hour) // those segments past retention
	for range 6 {
		appendOK(t, l, batchOf(t, 0, kv{key: []byte("k"), value: []byte("recent"), ts: clock.Now().UnixMilli()}))
	}
	start := l.LogStartOffset()
	hook = func(op vfs.Op, name string) {
		if op == vfs.OpRemove && strings.HasSuffix(name, segment.LogSuffix) {
			cancel()
		}
	}
	err := l.Maintain(ctx)
	hook = nil
	require.Greater(t, l.LogStartOffset(), start, "the retention removed segments")
	require.ErrorIs(t, err, context.Canceled)
}
