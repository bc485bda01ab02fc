package log

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestCompactionGoesOnPastAGroupRemovedWhole: a DeleteRecords that
// removes, during a compaction pass, the whole group the pass is
// cleaning leaves nothing of it to hold an older record of a key: the
// pass goes on to the groups after it and cleans them, so that the
// cleaner checkpoint it moves past them is true. (Ending the pass there
// and moving the checkpoint would leave their superseded records for
// good: the next pass maps from the checkpoint.)
func TestCompactionGoesOnPastAGroupRemovedWhole(t *testing.T) {
	var hook func(op vfs.Op, name string)
	l, clock := hookedLog(t, Config{SegmentBytes: 1000, CleanupPolicy: Compact}, &hook)
	ts := clock.Now().UnixMilli()
	for i := range 3 {
		// About 600 bytes a segment: each group is one segment.
		for k := range 4 {
			appendOK(t, l, batchOf(t, 0, kv{key: []byte{byte('a' + k)}, value: []byte(strings.Repeat("v", 100) + string(rune('0'+i))), ts: ts}))
		}
		require.NoError(t, l.Roll())
	}
	second := (*l.segs.Load())[1].Base()
	hook = func(op vfs.Op, name string) {
		if op != vfs.OpCreate || !strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			return
		}
		hook = nil
		_, err := l.DeleteRecordsBefore(context.Background(), second) // the first group, whole
		require.NoError(t, err)
	}
	res, err := l.Compact(t.Context())
	require.NoError(t, err)
	hook = nil
	require.Equal(t, second, l.LogStartOffset())
	require.Positive(t, res.CleanedTo)

	seen := map[string]int64{}
	for _, r := range readAll(t, l, l.LogStartOffset()) {
		if r.Offset >= res.CleanedTo {
			break
		}
		prev, dup := seen[string(r.Key)]
		require.False(t, dup, "key %q at %d and %d, below the cleaner checkpoint %d", r.Key, prev, r.Offset, res.CleanedTo)
		seen[string(r.Key)] = r.Offset
	}
	require.Len(t, seen, 4)
}
