package log

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// tornGarbage is what crashedLog appends to the last .log: a torn write
// past the recovery point, which recovery must cut.
var tornGarbage = bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, 100)

// crashedLog writes n batches of one record of size bytes each under
// SyncAlways (every one acknowledged) and leaves a log that needs
// recovery: its power cut (what was not synced lost, the index of the
// active segment among it), or, with closed, closed cleanly but for its
// clean-shutdown marker, removed (its indexes whole). With noRP its
// recovery-point checkpoint is removed too, so that every segment is
// rescanned. A torn tail is appended to the last .log (synced, so that
// copies of the returned FS keep it). It returns the FS and the
// acknowledged values in order.
func crashedLog(t *testing.T, cfg Config, n, size int, closed, noRP bool) (*vfs.MemFS, []string) {
	t.Helper()
	mem := vfs.NewMem()
	clock := newClock()
	l, err := Open(crashDir, cfg, Options{FS: mem, Clock: clock})
	require.NoError(t, err)
	var want []string
	for i := range n {
		v := fmt.Sprintf("%06d-%s", i, strings.Repeat("v", size))
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), v))
		want = append(want, v)
	}
	crashed := mem
	if closed {
		require.NoError(t, l.Close())
		require.NoError(t, mem.Remove(filepath.Join(crashDir, cleanShutdownFile)))
	} else {
		crashed = mem.CrashClone(vfs.CrashOptions{})
		require.NoError(t, l.Close())
	}
	if noRP {
		require.NoError(t, crashed.Remove(filepath.Join(crashDir, recoveryPointFile)))
	}
	require.NoError(t, crashed.SyncDir(crashDir))
	names, err := crashed.List(crashDir)
	require.NoError(t, err)
	var last string
	for _, name := range names {
		if strings.HasSuffix(name, segment.LogSuffix) {
			last = name // List sorts: the last .log is the active segment's
		}
	}
	f, err := crashed.Open(filepath.Join(crashDir, last))
	require.NoError(t, err)
	_, err = f.Write(tornGarbage)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	require.NotContains(t, names, cleanShutdownFile)
	return crashed, want
}

// dirState names every file of dir with its size and content's hash.
func dirState(t *testing.T, fsys vfs.FS, dir string) []string {
	t.Helper()
	names, err := fsys.List(dir)
	require.NoError(t, err)
	var out []string
	for _, name := range names {
		data := readAllFile(t, fsys, filepath.Join(dir, name))
		out = append(out, fmt.Sprintf("%s %d %x", name, len(data), crc32.Checksum(data, castagnoli)))
	}
	return out
}

// checkRecoversAll opens the log with a plain Open and checks that it
// holds every acknowledged value, and nothing of the torn tail.
func checkRecoversAll(t *testing.T, fsys vfs.FS, cfg Config, want []string) RecoveryInfo {
	t.Helper()
	l, err := Open(crashDir, cfg, Options{FS: fsys, Clock: newClock()})
	require.NoError(t, err, "the Open after one cut short")
	defer l.Close()
	var got []string
	for _, r := range readAll(t, l, 0) {
		got = append(got, string(r.Value))
	}
	require.Equal(t, want, got, "every acknowledged record, in order")
	require.EqualValues(t, len(want), l.LogEndOffset())
	return l.Recovery()
}

// TestOpenContextAlreadyCancelled: a ctx that has ended stops OpenContext
// before it touches the directory.
func TestOpenContextAlreadyCancelled(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := Config{Sync: SyncAlways}
	mem, want := crashedLog(t, cfg, 20, 100, false, false)
	before := dirState(t, mem, crashDir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l, err := OpenContext(ctx, crashDir, cfg, Options{FS: mem})
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, l)
	require.Equal(t, before, dirState(t, mem, crashDir), "nothing changed")
	info := checkRecoversAll(t, mem, cfg, want)
	require.EqualValues(t, len(tornGarbage), info.TruncatedBytes)
}

// TestOpenContextCancelledMidScan: a ctx that ends while recovery reads
// the first segment of 20 MiB of records (one segment, or the first of
// three, sealed) stops the read at its next 4 MiB mark, before the torn
// tail is cut; the next Open, and one after a crash, recover everything. Two scans read a
// whole segment: segment.OpenContext's, of what the index does not cover
// (a crash lost the index), which writes nothing, and the rescan of
// segment.RecoverContext, whose indexes, rebuilt in part, are removed.
func TestOpenContextCancelledMidScan(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, tc := range []struct {
		name         string
		closed, noRP bool
		segmentBytes int64
		scanned      int
	}{
		{"index lost", false, false, 0, 1},
		{"rescan", true, false, 0, 1},
		{"rescan of a rolled segment", true, true, 8 << 20, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Sync: SyncAlways, SegmentBytes: tc.segmentBytes}
			mem, want := crashedLog(t, cfg, 160, 64<<10, tc.closed, tc.noRP) // 20 MiB
			logName := filepath.Join(crashDir, segment.FileName(0, segment.LogSuffix))
			before := dirState(t, mem, crashDir)
			sizeBefore := readSize(t, mem, logName)
			require.Greater(t, sizeBefore, int64(6<<20))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var reads atomic.Int64
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpRead && name == logName && reads.Add(1) == 10 {
					cancel() // a few batches into the scan
				}
				return nil
			}))
			l, err := OpenContext(ctx, crashDir, cfg, Options{FS: fsys})
			require.ErrorIs(t, err, context.Canceled)
			require.Nil(t, l)
			require.Less(t, reads.Load(), int64(100), "cut short at the 4 MiB mark, not at the end of the scan")
			require.Equal(t, sizeBefore, readSize(t, mem, logName), "the torn tail is not cut by a scan cut short")
			if !tc.closed {
				require.Equal(t, before, dirState(t, mem, crashDir), "Open's scan writes nothing")
			} else {
				crashed := mem.CrashClone(vfs.CrashOptions{})
				for _, suf := range []string{segment.IndexSuffix, segment.TimeIndexSuffix} {
					_, err := mem.Stat(filepath.Join(crashDir, segment.FileName(0, suf)))
					require.ErrorIs(t, err, fs.ErrNotExist, "the index rebuilt in part is removed: %s", suf)
					_, err = crashed.Stat(filepath.Join(crashDir, segment.FileName(0, suf)))
					require.ErrorIs(t, err, fs.ErrNotExist, "durably: %s", suf)
				}
			}

			checkRecoversAll(t, mem.CrashClone(vfs.CrashOptions{}), cfg, want)
			info := checkRecoversAll(t, mem, cfg, want)
			require.EqualValues(t, len(tornGarbage), info.TruncatedBytes)
			require.Equal(t, tc.scanned, info.SegmentsScanned)
		})
	}
}

// TestOpenContextCancelledAnywhere cancels the ctx of OpenContext at each
// file-system operation of a recovery in turn (several segments rescanned,
// a torn tail cut, indexes, checkpoints and a producer-state snapshot
// written): whatever it returns, a plain Open after it, and one after a
// crash right after it, find every acknowledged record. In -short and
// under the race detector it takes a third of the operations
// (openCancelPoints).
func TestOpenContextCancelledAnywhere(t *testing.T) {
	defer goleak.VerifyNone(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 2 << 10}
	mem, want := crashedLog(t, cfg, 30, 200, false, true)

	l, err := OpenContext(context.Background(), crashDir, cfg, Options{FS: mem.CrashClone(vfs.CrashOptions{})})
	require.NoError(t, err)
	ref := l.Recovery()
	require.NoError(t, l.Close())
	require.Greater(t, ref.SegmentsScanned, 1, "several segments rescanned")
	require.EqualValues(t, len(tornGarbage), ref.TruncatedBytes)
	n := countOps(t, mem, cfg)

	cut := 0
	for _, k := range openCancelPoints(t, n) {
		fsys := mem.CrashClone(vfs.CrashOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		var ops atomic.Int64
		inj := vfs.InjectorFunc(func(vfs.Op, string) error {
			if ops.Add(1) == int64(k) {
				cancel()
			}
			return nil
		})
		l, err := OpenContext(ctx, crashDir, cfg, Options{FS: vfs.WithFaults(fsys, inj)})
		cancel()
		if err == nil {
			require.NoError(t, l.Close()) // cancelled after recovery's last look at ctx
		} else {
			require.ErrorIs(t, err, context.Canceled, "k=%d", k)
			cut++
		}
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			crashed := fsys.CrashClone(vfs.CrashOptions{})
			checkRecoversAll(t, fsys, cfg, want)
			checkRecoversAll(t, crashed, cfg, want)
		})
	}
	t.Logf("%d operations, %d cut short, %d segments rescanned", n, cut, ref.SegmentsScanned)
	require.Greater(t, cut, ref.SegmentsScanned, "cut short at each segment at least")
}

// openCancelPoints returns the operations (1 to n) at which a sweep of
// OpenContexts cancels one: every one; in -short and under the race
// detector's slow runs a third, drawn anew each run (testkit.Sample, from
// the run's sample seed, which RUNNEL_SAMPLE_SEED replays), and every one
// with RUNNEL_CRASH_POINTS=all.
func openCancelPoints(t *testing.T, n int) []int {
	t.Helper()
	ks := make([]int, n)
	for i := range ks {
		ks[i] = i + 1
	}
	if (testing.Short() || testkit.RaceEnabled) && !testkit.CrashPointsAll() {
		ks = testkit.Sample(ks, 3, testkit.SampleSeed(t))
	}
	return ks
}

// countOps counts the file-system operations of a plain Open of a copy of
// mem.
func countOps(t *testing.T, mem *vfs.MemFS, cfg Config) int {
	t.Helper()
	var n atomic.Int64
	l, err := Open(crashDir, cfg, Options{FS: vfs.WithFaults(mem.CrashClone(vfs.CrashOptions{}), vfs.InjectorFunc(func(vfs.Op, string) error {
		n.Add(1)
		return nil
	}))})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	return int(n.Load())
}

// readSize is the size of the named file.
func readSize(t *testing.T, fsys vfs.FS, name string) int64 {
	t.Helper()
	fi, err := fsys.Stat(name)
	require.NoError(t, err)
	return fi.Size()
}
