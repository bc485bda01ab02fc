package log

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenSwapFaults: Open completes a compaction's swap that a
// crash interrupted after its commit point (a .log.swap, here the cleaned
// copy of segment 3 that kept every record): it scans the swap file's
// batches (scanEnd), removes the segments it replaces, syncs the directory
// and renames the swap into place (completeSwap). Each of those steps
// that fails fails Open with its error, and the Open after it, the fault
// gone, finds every record once, in order.
func TestOpenSwapFaults(t *testing.T) {
	cfg := Config{Sync: SyncAlways}
	swap := segment.FileName(3, segment.LogSuffix+swapSuffix)
	for _, c := range []struct {
		name   string
		op     vfs.Op
		suffix string
	}{
		{"scanEnd open", vfs.OpOpen, swap},
		{"scanEnd read", vfs.OpRead, swap},
		{"completeSwap remove", vfs.OpRemove, segment.FileName(3, segment.LogSuffix)},
		{"completeSwap index remove", vfs.OpRemove, segment.FileName(3, segment.IndexSuffix)},
		{"completeSwap syncdir", vfs.OpSyncDir, ""},
		{"completeSwap rename", vfs.OpRename, swap},
	} {
		// The k-th such operation fails, each k until Open does not fail.
		for k := 1; ; k++ {
			require.Less(t, k, 50, c.name)
			e := newEnv(t)
			l := e.open(cfg)
			for i := range 12 {
				appendOK(t, l, valueBatch(t, 1_700_000_000_000, fmt.Sprint(i)))
				if i%3 == 2 {
					require.NoError(t, l.Roll()) // segments at 0, 3, 6, 9
				}
			}
			require.NoError(t, l.Close())
			writeMemFile(t, e.fs, filepath.Join(e.dir, swap),
				readAllFile(t, e.fs, filepath.Join(e.dir, segment.FileName(3, segment.LogSuffix))))

			l, err := openFailingKth(e, cfg, c.op, c.suffix, k)
			if err == nil {
				require.NoError(t, l.Close())
				break
			}
			require.ErrorIs(t, err, vfs.ErrInjected, "%s #%d", c.name, k)

			l = e.open(cfg)
			require.EqualValues(t, 12, l.LogEndOffset(), "%s #%d", c.name, k)
			recs := readAll(t, l, 0)
			require.Len(t, recs, 12, "%s #%d", c.name, k)
			for i, r := range recs {
				require.EqualValues(t, i, r.Offset)
				require.Equal(t, fmt.Sprint(i), string(r.Value))
			}
			names, err := e.fs.List(e.dir)
			require.NoError(t, err)
			for _, n := range names {
				require.NotContains(t, n, swapSuffix, "%s #%d", c.name, k)
			}
			require.NoError(t, l.Close())
		}
	}
}

// openCompactFaultLog opens a compacted log (keys keys, one record a
// batch, a segment every three records, the last one active) on a MemFS
// whose every operation first goes to *inj when set, and appends keys.
func openCompactFaultLog(t *testing.T, inj *func(op vfs.Op, name string) error, keys ...string) (*Log, *env) {
	t.Helper()
	e := newEnv(t)
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if *inj != nil {
			return (*inj)(op, name)
		}
		return nil
	}))
	l := e.open(Config{Sync: SyncAlways, CleanupPolicy: Compact})
	for i, k := range keys {
		appendOK(t, l, keyedBatch(t, k))
		if i%3 == 2 {
			require.NoError(t, l.Roll())
		}
	}
	return l, e
}

// requireNoCleanedFiles requires e's log directory to hold no file of an
// unfinished cleaning.
func requireNoCleanedFiles(t *testing.T, e *env) {
	t.Helper()
	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	for _, n := range names {
		require.NotContains(t, n, cleanedSuffix)
	}
}

// fenceFromHook fences l from inside a file-system hook: an
// Append whose segment's fsync fails (fail is set for it).
func fenceFromHook(t *testing.T, l *Log, fail *bool) {
	*fail = true
	_, err := l.Append(context.Background(), keyedBatch(t, "z"), AppendOptions{})
	*fail = false
	require.ErrorIs(t, err, ErrLogFenced)
}

// TestCompactFencedMeanwhile: a log fenced while Compact cleans
// (a concurrent Append's fsync failed) is not written by it: with a group
// to swap in, swapIn finds the log fenced and drops the cleaned copy;
// with none, Compact finds it before it moves the cleaner checkpoint.
// Either way Compact returns ErrLogFenced, no .cleaned file stays, and the
// reopened log holds every record.
func TestCompactFencedMeanwhile(t *testing.T) {
	for _, c := range []struct {
		name string
		keys []string
	}{
		{"swap", []string{"a", "a", "b", "c", "d", "e"}}, // segment 0 loses an "a"
		{"no swap", []string{"a", "b", "c", "d"}},        // one cleanable segment, nothing to remove
	} {
		t.Run(c.name, func(t *testing.T) {
			var inj func(op vfs.Op, name string) error
			l, e := openCompactFaultLog(t, &inj, c.keys...)
			var l2 *Log
			defer func() {
				if l2 != nil {
					l2.Close()
				}
			}()
			fail, fenced := false, false
			inj = func(op vfs.Op, name string) error {
				if fail && op == vfs.OpSync && strings.HasSuffix(name, segment.LogSuffix) {
					return vfs.ErrInjected
				}
				if !fenced && op == vfs.OpCreate && strings.Contains(name, cleanedSuffix) {
					fenced = true
					fenceFromHook(t, l, &fail)
				}
				return nil
			}
			_, err := l.Compact(context.Background())
			inj = nil
			require.True(t, fenced)
			require.ErrorIs(t, err, ErrLogFenced)
			requireNoCleanedFiles(t, e)
			cleaned, err := readOffset(e.fs, e.dir, cleanerFile, 0)
			require.NoError(t, err)
			require.Zero(t, cleaned, "the cleaner checkpoint did not move")
			l.Close()

			l2 = e.open(Config{Sync: SyncAlways, CleanupPolicy: Compact})
			recs := readAll(t, l2, 0)
			require.GreaterOrEqual(t, len(recs), len(c.keys))
			for i, r := range recs[:len(c.keys)] {
				require.EqualValues(t, i, r.Offset)
				require.Equal(t, c.keys[i], string(r.Key))
			}
		})
	}
}

// TestCompactReadFailsUnderTruncation: a read of the key map's
// pass that fails while a truncation cut the log under it is no error of
// Compact's: the pass ends (the next starts over), nothing swapped in,
// and the next pass cleans.
func TestCompactReadFailsUnderTruncation(t *testing.T) {
	var inj func(op vfs.Op, name string) error
	l, e := openCompactFaultLog(t, &inj, "a", "a", "b", "c", "d", "e", "f")
	defer l.Close()
	seg0 := segment.FileName(0, segment.LogSuffix)
	truncated := false
	inj = func(op vfs.Op, name string) error {
		if !truncated && op == vfs.OpRead && strings.HasSuffix(name, seg0) {
			truncated = true
			end, err := l.TruncateTo(6) // into the active segment
			require.NoError(t, err)
			require.EqualValues(t, 6, end)
			return vfs.ErrInjected
		}
		return nil
	}
	res, err := l.Compact(context.Background())
	inj = nil
	require.True(t, truncated)
	require.NoError(t, err)
	require.Zero(t, res.SegmentsRewritten)
	requireNoCleanedFiles(t, e)

	res, err = l.Compact(context.Background())
	require.NoError(t, err)
	require.Positive(t, res.SegmentsRewritten)
	recs := readAll(t, l, 0)
	var keys []string
	for _, r := range recs {
		keys = append(keys, string(r.Key))
	}
	require.Equal(t, []string{"a", "b", "c", "d", "e"}, keys)
}

// TestCompactReadFails: a read of the cleaner's that fails (no
// segment removed or cut under it), as it builds its key map or as it
// copies a segment (after the cleaned copy is created), fails Compact with
// its error, without fencing the log or leaving a cleaned copy; the next
// pass cleans.
func TestCompactReadFails(t *testing.T) {
	for _, inCleaning := range []bool{false, true} {
		t.Run(map[bool]string{false: "key map", true: "cleaning"}[inCleaning], func(t *testing.T) {
			var inj func(op vfs.Op, name string) error
			l, e := openCompactFaultLog(t, &inj, "a", "a", "b", "c", "d", "e", "f")
			defer l.Close()
			seg0 := segment.FileName(0, segment.LogSuffix)
			armed, failed := !inCleaning, false
			inj = func(op vfs.Op, name string) error {
				if op == vfs.OpCreate && strings.Contains(name, cleanedSuffix) {
					armed = true
				}
				if armed && op == vfs.OpRead && strings.HasSuffix(name, seg0) {
					failed = true
					return vfs.ErrInjected
				}
				return nil
			}
			_, err := l.Compact(context.Background())
			inj = nil
			require.True(t, failed)
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.NotErrorIs(t, err, ErrLogFenced)
			requireNoCleanedFiles(t, e)
			appendOK(t, l, keyedBatch(t, "g"))
			res, err := l.Compact(context.Background())
			require.NoError(t, err)
			require.Positive(t, res.SegmentsRewritten)
		})
	}
}
