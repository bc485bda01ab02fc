package log

import (
	"context"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestOpenRemovesTheCleanShutdownMarkerWhenItScans: a log closed cleanly
// whose directory also holds what a failed write left (a checkpoint's
// .tmp file; a failed snapshot write in an fsync is logged and the log
// goes on) is opened as after a crash — Open removes the file and scans —
// and the clean-shutdown marker must go too. It stayed: the next crash
// was taken for a clean shutdown at the log end of that Close, and Open
// refused the records appended since as a corrupt batch past it.
func TestOpenRemovesTheCleanShutdownMarkerWhenItScans(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b")) // 0-1
	require.NoError(t, l.Close())
	f, err := e.fs.Create(filepath.Join(e.dir, snapshotName(2)+tmpSuffix))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	l = e.open(cfg)
	require.False(t, l.Recovery().Clean, "a leftover .tmp file: scanned")
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "c")) // 2, fsynced
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "d")) // 3, fsynced

	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	l2, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
	require.NoError(t, err, "open after a crash")
	defer l2.Close()
	require.False(t, l2.Recovery().Clean, "a crash taken for a clean shutdown")
	require.EqualValues(t, 4, l2.LogEndOffset())
	require.Len(t, readAll(t, l2, 0), 4)
}

// TestOpenStaleCleanShutdownMarker: a clean-shutdown marker whose
// recovery point is not where the segments end — a marker a crash brought
// back, or a directory restored from copies taken at different moments —
// made Open fail with record.ErrCorrupt, though nothing was lost, until
// someone removed the marker by hand. Kafka opens such a log. Open now
// takes the log for one that crashed: it scans from the recovery point,
// keeps every whole batch past it and cuts a torn tail, as after any
// crash. Each case: a clean Close (marker, recovery point at its end),
// more appends, a crash, and the marker put back.
func TestOpenStaleCleanShutdownMarker(t *testing.T) {
	const ts = 1_700_000_000_000
	cases := []struct {
		name  string
		cfg   Config
		after func(t *testing.T, l *Log) // appends after the clean Close's reopen
		want  int64                      // the log end offset after the crash
	}{
		{"past the recovery point in its segment", Config{Sync: SyncAlways}, func(t *testing.T, l *Log) {
			appendOK(t, l, valueBatch(t, ts, "c"))
			appendOK(t, l, valueBatch(t, ts, "d"))
		}, 4},
		{"past the recovery point in later segments", Config{Sync: SyncAlways, SegmentBytes: 100}, func(t *testing.T, l *Log) {
			appendEach(t, l, ts, "c", "d", "e") // a segment each
		}, 5},
		{"past the recovery point, then a torn tail", Config{Sync: SyncNever}, func(t *testing.T, l *Log) {
			appendOK(t, l, valueBatch(t, ts, "c"))
			require.NoError(t, l.Flush(context.Background()))
			appendOK(t, l, valueBatch(t, ts, "d")) // never synced: garbage after the crash
		}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(tc.cfg)
			appendOK(t, l, valueBatch(t, ts, "a", "b")) // 0-1
			require.NoError(t, l.Close())
			marker := filepath.Join(e.dir, cleanShutdownFile)
			_, err := e.fs.Stat(marker)
			require.NoError(t, err, "Close writes the marker")

			l = e.open(tc.cfg)
			tc.after(t, l)
			e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{Tail: vfs.TailGarbage})
			l.Close()
			forgeCleanMarker(t, e.fs, e.dir) // the stale marker

			l, err = Open(e.dir, tc.cfg, Options{FS: e.fs, Clock: e.clock})
			require.NoError(t, err, "Open with a stale clean-shutdown marker")
			require.False(t, l.Recovery().Clean, "the marker disagrees with the segments: not taken for a clean shutdown")
			require.Equal(t, tc.want, l.LogEndOffset())
			recs := readAll(t, l, 0)
			require.Len(t, recs, int(tc.want))
			for i, r := range recs {
				require.Equal(t, "abcde"[i:i+1], string(r.Value))
			}
			_, err = e.fs.Stat(marker)
			require.ErrorIs(t, err, fs.ErrNotExist, "the stale marker goes")

			// It takes an append, and opens again as it closed, cleanly.
			appendOK(t, l, valueBatch(t, ts, "z"))
			require.NoError(t, l.Close())
			l = e.open(tc.cfg)
			defer l.Close()
			require.True(t, l.Recovery().Clean)
			require.Equal(t, tc.want+1, l.LogEndOffset())
		})
	}
}

// TestOpenCleanMarkerStillReportsLoss: what TestOpenStaleCleanShutdownMarker
// recovers is a marker older than the records, with a batch ending where
// the clean Close ended the log. A log closed cleanly whose active
// segment lost its last batch (the file cut at a batch boundary), or whose
// last batch's base offset went bad on disk (no CRC covers it), has no
// batch ending there: Open still fails with record.ErrCorrupt, touching
// nothing, rather than open without records, or with offsets made up.
func TestOpenCleanMarkerStillReportsLoss(t *testing.T) {
	const ts = 1_700_000_000_000
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, f vfs.File, lastPos int64)
	}{
		{"last batch lost", func(t *testing.T, f vfs.File, lastPos int64) {
			require.NoError(t, f.Truncate(lastPos))
		}},
		{"base offset of the last batch raised", func(t *testing.T, f vfs.File, lastPos int64) {
			_, err := f.WriteAt([]byte{0, 0, 0, 0, 0, 0, 0, 9}, lastPos)
			require.NoError(t, err)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{Sync: SyncAlways}
			l := e.open(cfg)
			appendOK(t, l, valueBatch(t, ts, "a", "b")) // 0-1
			seg := *l.segs.Load()
			lastPos := seg[0].Size()
			appendOK(t, l, valueBatch(t, ts, "c", "d")) // 2-3
			require.NoError(t, l.Close())

			f, err := e.fs.Open(filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix)))
			require.NoError(t, err)
			tc.damage(t, f, lastPos)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())

			_, err = Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
			require.ErrorIs(t, err, record.ErrCorrupt)
			_, err = e.fs.Stat(filepath.Join(e.dir, cleanShutdownFile))
			require.NoError(t, err, "the marker stays: nothing was opened")
		})
	}
}

// TestCleanMarkerBesideNoSegment: a clean Close leaves its active
// segment behind, so a marker beside no segment at all (the segment
// files were lost) is not of these files. The log starts empty at its
// log start offset, as it did, and Recovery says it was not opened
// clean: it said Clean, though the files the marker spoke of were gone.
func TestCleanMarkerBesideNoSegment(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a", "b", "c")) // 0-2
	_, err := l.DeleteRecordsBefore(context.Background(), 2)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	names, err := e.fs.List(e.dir)
	require.NoError(t, err)
	require.Contains(t, names, cleanShutdownFile)
	removed := 0
	for _, n := range names {
		if ext := filepath.Ext(n); ext == ".log" || ext == ".index" || ext == ".timeindex" {
			require.NoError(t, e.fs.Remove(filepath.Join(e.dir, n)))
			removed++
		}
	}
	require.Equal(t, 3, removed, "one segment's three files")

	l = e.open(cfg)
	require.False(t, l.Recovery().Clean, "the marker's segment is gone")
	require.Zero(t, l.Recovery().SegmentsFound)
	require.EqualValues(t, 2, l.LogStartOffset())
	require.EqualValues(t, 2, l.LogEndOffset())
	names, err = e.fs.List(e.dir)
	require.NoError(t, err)
	require.NotContains(t, names, cleanShutdownFile, "the marker goes")
	res := appendOK(t, l, valueBatch(t, ts, "d")) // 2
	require.EqualValues(t, 2, res.FirstOffset)
	require.NoError(t, l.Close())

	l = e.open(cfg)
	defer l.Close()
	require.True(t, l.Recovery().Clean)
	recs := readAll(t, l, l.LogStartOffset())
	require.Len(t, recs, 1)
	require.Equal(t, "d", string(recs[0].Value))
}

// TestStaleMarkerPastTheRecoveryPoint: a clean-shutdown marker whose log
// end is past the recovery point checkpoint is of another moment than
// the files, though all else in it (the active segment's base, its max
// timestamp and time index) is theirs and the segment ends at the
// recovery point: the log is recovered as after a crash.
func TestStaleMarkerPastTheRecoveryPoint(t *testing.T) {
	requireForgedMarkerRecovered(t, Config{Sync: SyncAlways}, func(int) int64 { return 1_700_000_000_000 }, func(mk *cleanMarker) {
		require.EqualValues(t, 3, mk.end)
		mk.end = 5 // records 3 and 4, which the files do not hold
	})
}

// requireForgedMarkerRecovered closes a log of three records (a, b and c,
// record i stamped ts(i)) cleanly, changes its clean-shutdown marker with
// forge, and opens it again: the marker is of another moment than the
// files, and the log is recovered as after a crash (its one segment
// scanned), whole.
func requireForgedMarkerRecovered(t *testing.T, cfg Config, ts func(i int) int64, forge func(mk *cleanMarker)) {
	t.Helper()
	e := newEnv(t)
	l := e.open(cfg)
	for i, v := range []string{"a", "b", "c"} {
		appendOK(t, l, valueBatch(t, ts(i), v))
	}
	require.NoError(t, l.Close())
	mk, why, err := readMarker(e.fs, e.dir)
	require.NoError(t, err)
	require.Empty(t, why)
	forge(&mk)
	writeMemFile(t, e.fs, filepath.Join(e.dir, cleanShutdownFile), appendMarker(nil, mk))

	l = e.open(cfg)
	defer l.Close()
	info := l.Recovery()
	require.False(t, info.Clean, "%+v", info)
	require.Equal(t, 1, info.SegmentsScanned, "%+v", info)
	require.EqualValues(t, 3, l.LogEndOffset())
	require.Equal(t, []string{"a", "b", "c"}, values(readAll(t, l, 0)))
}
