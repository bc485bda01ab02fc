package log

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCompactionSkippedGroupKeepsTombstone: a compaction pass that leaves
// a group as it was, because DeleteRecordsBefore removed the group's first
// segment under it, may not go on to clean the groups after it as if the
// skipped one had been cleaned: an older record of a key can survive in
// what is left of that group, and the key's tombstone, further on, must
// neither get its delete horizon in that pass (its delete.retention.ms
// counts from the pass that removed the older records) nor go once its
// horizon has passed. Here two passes each have their first group cut
// under them: before, the first set the tombstone's horizon, the second
// removed the tombstone, and the key's older value, in the part of the
// group the deletions left, was the key's value again.
func TestCompactionSkippedGroupKeepsTombstone(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 600, CleanupPolicy: Compact | Delete, RetentionTime: -1, DeleteRetentionTime: time.Minute}
	var onCleaned atomic.Pointer[func(name string)]
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if f := onCleaned.Load(); f != nil && op == vfs.OpCreate && strings.HasSuffix(name, segment.LogSuffix+cleanedSuffix) {
			(*f)(filepath.Base(name))
		}
		return nil
	}))
	l := e.open(cfg)
	defer l.Close()
	ctx := context.Background()
	now := e.clock.Now().UnixMilli()
	rec := func(key, value string) {
		var v []byte
		if value != "" {
			v = []byte(value)
		}
		appendOK(t, l, batchOf(t, compression.None, kv{key: []byte(key), value: v, ts: now}))
	}
	// Three small segments, cleaned as one group: a, b, then k's value.
	rec("a", "1")
	require.NoError(t, l.Roll())
	rec("b", "1")
	require.NoError(t, l.Roll())
	k := l.LogEndOffset()
	rec("k", "old")
	require.NoError(t, l.Roll())
	// k's tombstone, in a segment too large to join that group.
	rec("k", "")
	rec("z", strings.Repeat("z", 400))
	require.NoError(t, l.Roll())
	rec("active", "1")
	segs := *l.segs.Load()
	require.Len(t, segs, 5)
	require.Len(t, l.groups(segs[:4]), 2, "the first three segments are one group, the tombstone's another")

	// Each pass's first group loses its first segment as the pass begins
	// to clean it.
	cut := func(before int64) {
		f := func(name string) {
			if name == segment.FileName(segs[0].Base(), segment.LogSuffix+cleanedSuffix) ||
				name == segment.FileName(segs[1].Base(), segment.LogSuffix+cleanedSuffix) {
				onCleaned.Store(nil)
				_, err := l.DeleteRecordsBefore(ctx, before)
				require.NoError(t, err)
			}
		}
		onCleaned.Store(&f)
	}
	cut(segs[1].Base())
	_, err := l.Compact(ctx)
	require.NoError(t, err)
	e.clock.Advance(2 * time.Minute) // past any horizon the pass set
	cut(segs[2].Base())
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	onCleaned.Store(nil)

	// Whatever the passes did, k is deleted: its tombstone is there, or
	// no value of k is.
	var values []string
	for _, b := range batchesOf(t, l) {
		for r, err := range b.Records() {
			require.NoError(t, err)
			if string(r.Key) == "k" && r.Offset >= l.LogStartOffset() {
				values = append(values, string(r.Value))
			}
		}
	}
	require.NotEqual(t, []string{"old"}, values, "k's value at %d came back: its tombstone went while it stayed", k)
}
