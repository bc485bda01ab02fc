package log

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestCleanMarkerTimeIndexOfAnotherMoment: a log closed cleanly whose
// active segment's time index is then brought back from an earlier
// moment, without its last entries (as a write of the index that failed
// before a crash leaves it, the marker and recovery point coming back
// from a clean Close: the transient-fault simulation's seeds 152006265
// and 160038045). Open took the log for closed cleanly: it read the max
// timestamp from the time index and the batches after the offset index's
// last entry, which lie past the batch with the largest timestamp, so
// that the segment's max timestamp came out too low and OffsetForTime
// missed that batch. The marker records the max timestamp the Close
// knew: Open finds another one, and recovers the active segment as after
// a crash, which rebuilds its time index.
func TestCleanMarkerTimeIndexOfAnotherMoment(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1} // an index entry a batch
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a"))     // 0
	appendOK(t, l, valueBatch(t, ts+100, "b")) // 1: the largest timestamp
	for _, v := range []string{"c", "d", "e"} {
		appendOK(t, l, valueBatch(t, ts+50, v)) // 2-4
	}
	require.NoError(t, l.Close())
	timeIndex := filepath.Join(e.dir, segment.FileName(0, segment.TimeIndexSuffix))
	require.NotEmpty(t, readAllFile(t, e.fs, timeIndex))
	writeMemFile(t, e.fs, timeIndex, nil) // the time index of before the first entry

	l = e.open(cfg)
	defer l.Close()
	require.False(t, l.Recovery().Clean, "the time index is not the one the clean Close left")
	require.EqualValues(t, 5, l.LogEndOffset())
	off, ok, err := l.OffsetForTime(ts + 100)
	require.NoError(t, err)
	require.True(t, ok, "the record with the largest timestamp is found")
	require.EqualValues(t, 1, off)
	off, ok, err = l.OffsetForTime(ts + 1)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off)
}

// TestCleanMarkerTimeIndexOfAnotherMomentSameMax: as
// TestCleanMarkerTimeIndexOfAnotherMoment, with the largest timestamp in
// the batch after the offset index's last entry too (transient-fault
// simulation seed 170017461): Open found the right max timestamp, but in
// that batch, not in the first that had it, whose time index entry was
// lost; the next index entry then said so, and OffsetForTime, starting
// its scan there, skipped the first batch. The marker records the
// offset of the max timestamp's entry as well.
func TestCleanMarkerTimeIndexOfAnotherMomentSameMax(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1} // an index entry a batch
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a"))     // 0
	appendOK(t, l, valueBatch(t, ts+100, "b")) // 1: the largest timestamp, first
	appendOK(t, l, valueBatch(t, ts+100, "c")) // 2: the largest timestamp again
	require.NoError(t, l.Close())
	writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(0, segment.TimeIndexSuffix)), nil)

	l = e.open(cfg)
	defer l.Close()
	require.False(t, l.Recovery().Clean, "the time index is not the one the clean Close left")
	appendOK(t, l, valueBatch(t, ts+50, "d")) // 3
	appendOK(t, l, valueBatch(t, ts+50, "e")) // 4: an index entry for the max timestamp so far
	off, ok, err := l.OffsetForTime(ts + 100)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off, "the first record with the largest timestamp")
}

// TestCleanMarkerOfOlderRunnel: an older runnel's clean Close wrote an
// empty marker, which records neither the log end nor the active
// segment's max timestamp: Open recovers the active segment as after a
// crash (once: its own Close writes a marker it trusts), and the sealed
// segments below the recovery point are not scanned.
func TestCleanMarkerOfOlderRunnel(t *testing.T) {
	const ts = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, SegmentBytes: 100}
	l := e.open(cfg)
	appendEach(t, l, ts, "a", "b", "c") // a segment each
	require.NoError(t, l.Close())
	writeMemFile(t, e.fs, filepath.Join(e.dir, cleanShutdownFile), nil)

	l = e.open(cfg)
	info := l.Recovery()
	require.False(t, info.Clean)
	require.Equal(t, 1, info.SegmentsScanned, "the active segment alone")
	require.EqualValues(t, 3, l.LogEndOffset())
	require.Len(t, readAll(t, l, 0), 3)
	require.NoError(t, l.Close())

	l = e.open(cfg)
	defer l.Close()
	require.True(t, l.Recovery().Clean)
	require.EqualValues(t, 3, l.LogEndOffset())
}

// TestCleanMarkerUnreadable: a marker that does not parse as a clean
// Close writes it (a bad checksum, a layout of another version) is not
// trusted: the log is recovered as after a crash, not refused.
func TestCleanMarkerUnreadable(t *testing.T) {
	const ts = 1_700_000_000_000
	for _, tc := range []struct {
		name string
		edit func(data []byte) []byte
	}{
		{"checksum", func(data []byte) []byte { data[2]++; return data }},
		{"version 0", func([]byte) []byte { return appendCheckpoint(nil, checkpointV0, [][]int64{{2, 0, ts, 1}}) }},
		{"two entries", func([]byte) []byte {
			return appendCheckpoint(nil, checkpointV1, [][]int64{{2, 0, ts, 1}, {2, 0, ts, 1}})
		}},
		{"three integers", func([]byte) []byte { return appendCheckpoint(nil, checkpointV1, [][]int64{{2, 0, ts}}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{Sync: SyncAlways}
			l := e.open(cfg)
			appendOK(t, l, valueBatch(t, ts, "a", "b"))
			require.NoError(t, l.Close())
			marker := filepath.Join(e.dir, cleanShutdownFile)
			writeMemFile(t, e.fs, marker, tc.edit(readAllFile(t, e.fs, marker)))

			l = e.open(cfg)
			defer l.Close()
			require.False(t, l.Recovery().Clean)
			require.EqualValues(t, 2, l.LogEndOffset())
		})
	}
}

// forgeCleanMarker writes in dir the clean-shutdown marker that a clean
// Close of the files as they are would have written beside them: the
// recovery point on disk as its log end, the last segment's base offset,
// and the largest timestamp of that segment's batches that parse (those
// before a torn tail), with the last offset of the first batch that has
// it. It is the stalest marker there can be: nothing
// but the segments' indexes tells it from a true one.
func forgeCleanMarker(t testT, fsys vfs.FS, dir string) {
	t.Helper()
	rp, err := readOffset(fsys, dir, recoveryPointFile, 0)
	require.NoError(t, err)
	names, err := fsys.List(dir)
	require.NoError(t, err)
	m := cleanMarker{end: rp, maxTimestamp: -1, maxTimestampOffset: -1}
	for _, name := range names {
		if base, suffix, ok := segment.ParseFileName(name); ok && suffix == segment.LogSuffix && base >= m.activeBase {
			m.activeBase = base
		}
	}
	m.maxTimestampOffset = m.activeBase
	data, err := readMemFile(fsys, filepath.Join(dir, segment.FileName(m.activeBase, segment.LogSuffix)))
	if err == nil {
		for p := 0; p < len(data); {
			b, err := record.Parse(data[p:], int64(p))
			if err != nil || b.Validate(int64(p)) != nil {
				break
			}
			if b.MaxTimestamp() > m.maxTimestamp {
				m.maxTimestamp, m.maxTimestampOffset = b.MaxTimestamp(), b.LastOffset()
			}
			p += len(b)
		}
	}
	// And the number of entries its time index holds, as Open counts
	// them (trailing all-zero entries are padding).
	m.timeEntries = -1
	if idx, err := readMemFile(fsys, filepath.Join(dir, segment.FileName(m.activeBase, segment.TimeIndexSuffix))); err == nil {
		n := len(idx) / index.TimeEntrySize
		for n > 0 && bytes.Count(idx[(n-1)*index.TimeEntrySize:n*index.TimeEntrySize], []byte{0}) == index.TimeEntrySize {
			n--
		}
		m.timeEntries = int64(n)
	}
	writeMemFile(t, fsys, filepath.Join(dir, cleanShutdownFile), appendMarker(nil, m))
	require.NoError(t, fsys.SyncDir(dir))
}

// TestCleanMarkerOfAnEmptyTimeIndex: a clean-shutdown marker that counts
// no entry in the active segment's time index, beside a time index that
// holds some, is of another moment than the files (a count of 0 is a
// count; only -1, an older layout's, is none): recovered as after a
// crash.
func TestCleanMarkerOfAnEmptyTimeIndex(t *testing.T) {
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1}
	requireForgedMarkerRecovered(t, cfg, func(int) int64 { return 1_700_000_000_001 }, func(mk *cleanMarker) {
		require.Positive(t, mk.timeEntries)
		mk.timeEntries = 0
	})
}

// TestCleanMarkerOfAnotherMaxTimestampOffset: a clean-shutdown marker
// whose offset of the max timestamp is not the active segment's, all else
// in it being theirs, is of another moment than the files: recovered as
// after a crash.
func TestCleanMarkerOfAnotherMaxTimestampOffset(t *testing.T) {
	requireForgedMarkerRecovered(t, Config{Sync: SyncAlways}, func(i int) int64 { return 1_700_000_000_000 + int64(i) }, func(mk *cleanMarker) {
		require.EqualValues(t, 2, mk.maxTimestampOffset) // the max at 2
		mk.maxTimestampOffset = 1
	})
}
