package log

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// orphanIndexes lists the index files in dir whose segment has no .log
// (nor a compaction's .log.swap that would take its name).
func orphanIndexes(t *testing.T, fsys vfs.FS, dir string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	require.NoError(t, err)
	logs := map[int64]bool{}
	for _, name := range names {
		if base, suffix, ok := segment.ParseFileName(name); ok && (suffix == segment.LogSuffix || suffix == segment.LogSuffix+swapSuffix) {
			logs[base] = true
		}
	}
	var orphans []string
	for _, name := range names {
		base, suffix, ok := segment.ParseFileName(name)
		if ok && (suffix == segment.IndexSuffix || suffix == segment.TimeIndexSuffix) && !logs[base] {
			orphans = append(orphans, name)
		}
	}
	return orphans
}

// TestOpenRemovesOrphanedIndexes: a segment's files are removed one by
// one, its .log first, so a removal that fails part way (an I/O error on
// its index: the log is fenced) or a crash between the removals leaves
// its indexes without their .log. Open removed them never: a segment's
// base offset is never used again, so each such failure left its
// indexes on disk for good (a sealed 1 GiB segment's are some 5 MiB).
// Kafka's LogLoader deletes an index file it finds without its .log
// ("Found an orphaned index file"); so does Open now, whether the
// deletion was DeleteRecords' or a compaction's swap of the segments it
// replaced.
func TestOpenRemovesOrphanedIndexes(t *testing.T) {
	failing := segment.FileName(1, segment.IndexSuffix)
	for _, tc := range []struct {
		name   string
		cfg    Config
		delete func(*testing.T, *Log) error
	}{
		{"delete-records", Config{SegmentBytes: 100}, func(t *testing.T, l *Log) error {
			_, err := l.DeleteRecordsBefore(context.Background(), 3)
			return err
		}},
		{"compaction-swap", Config{SegmentBytes: 1000, CleanupPolicy: Compact}, func(t *testing.T, l *Log) error {
			_, err := l.Compact(context.Background())
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			var armed atomic.Bool
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if armed.Load() && op == vfs.OpRemove && strings.HasSuffix(name, failing) {
					return vfs.ErrInjected
				}
				return nil
			}))
			e := &env{t: t, fs: fsys, dir: "/data/topic-0", clock: newClock()}
			l := e.open(tc.cfg)
			for _, v := range []string{"a", "b", "c", "d", "e"} {
				appendOK(t, l, keyedBatch(t, "k"+v))
				require.NoError(t, l.Roll()) // a segment each: bases 0 to 4
			}
			require.Equal(t, 6, l.Segments())

			armed.Store(true)
			err := tc.delete(t, l)
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.ErrorIs(t, err, ErrLogFenced)
			armed.Store(false)
			require.NoError(t, l.Discard())
			require.Equal(t, []string{failing}, orphanIndexes(t, mem, e.dir), "the failed removal left segment 1's index without its .log")

			l = e.open(tc.cfg)
			require.Empty(t, orphanIndexes(t, mem, e.dir), "Open left an index without its .log")
			recs := readAll(t, l, l.LogStartOffset())
			require.NotEmpty(t, recs)
			require.NoError(t, l.Close())
			l = e.open(tc.cfg)
			defer l.Close()
			require.Equal(t, recs, readAll(t, l, l.LogStartOffset()))
		})
	}
}
