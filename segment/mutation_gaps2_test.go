package segment

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/index"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// Tests that close gaps a mutation-testing pass over read.go, offsets.go,
// maxts.go, indexcheck.go and segment.go found: each fails with a mutant
// of the code that the rest of the suite let through.

// TestFindTimeWalkChecksOffsets: a base offset gone bad on disk down into
// the batch before it, in a segment of contiguous offsets, is reported by
// a FindTime whose walk reaches the batch, not given as its answer (the
// record at the moved offset is another batch's).
func TestFindTimeWalkChecksOffsets(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		tried := 0
		for victim := 1; victim < len(f.batches)-1; victim++ {
			f.restore(t)
			f.setBase(t, victim, f.batches[victim].base-1)
			s, _, err := f.open(t, false)
			if err != nil {
				f.requireCorrupt(t, err, "Recover")
				continue
			}
			off, ok, err := s.FindTime(tsBase+int64(victim), ofBase)
			mustClose(t, s)
			require.Errorf(t, err, "batch %d moved down: FindTime = %d, %v", victim, off, ok)
			f.requireCorrupt(t, err, "FindTime")
			tried++
		}
		require.NotZero(t, tried)
	})
}

// TestFindTimeChecksTheBatchBeforeAGap: a FindTime whose walk passes a
// batch (its timestamps are below the one sought) and then finds the
// batch after it following a gap, in a segment of contiguous offsets,
// checks the CRC of the batch it passed, as a scan does: its last offset
// delta shrank on disk.
func TestFindTimeChecksTheBatchBeforeAGap(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		times, err := index.DecodeTimeEntries(f.pristine[2], ofBase)
		require.NoError(t, err)
		tried := 0
		for victim := 1; victim < len(f.batches)-1; victim++ {
			v, after := f.batches[victim], f.batches[victim+1]
			if v.last == v.base {
				continue // one record: no delta to shrink
			}
			starts := false // a time entry moves FindTime's start to the batch after it
			for _, e := range times {
				starts = starts || (e.Offset >= after.base && e.Offset <= after.last)
			}
			if starts {
				continue
			}
			f.restore(t)
			f.setDelta(t, victim, int32(v.last-v.base)-1)
			s, _, err := f.open(t, false)
			if err != nil {
				f.requireCorrupt(t, err, "Recover")
				continue
			}
			off, ok, err := s.FindTime(tsBase+int64(victim)+1, v.base)
			mustClose(t, s)
			require.Errorf(t, err, "batch %d shrunk: FindTime = %d, %v", victim, off, ok)
			var ce *record.CorruptError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, v.pos, ce.Position, "the shrunk batch's CRC error")
			tried++
		}
		require.NotZero(t, tried)
	})
}

// TestReadFromTheStartTrustsTheBase: a Read from position 0 knows that
// the segment's first batch follows nothing, so a first batch that starts
// at the segment's base needs no confirmation from the batch after it: it
// is returned when that batch's base offset went bad down onto its own.
func TestReadFromTheStartTrustsTheBase(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		f.setBase(t, 1, f.batches[0].last)
		s, _, err := f.open(t, false)
		require.NoError(t, err)
		defer s.Close()
		data, err := s.Read(0, 1)
		require.NoError(t, err)
		require.Len(t, data, int(f.batches[0].size))
		require.Equal(t, int64(ofBase), record.Batch(data).BaseOffset())
	})
}

// TestReadConfirmationIgnoresACorruptHeader: a batch after a gap that a
// read returns last is confirmed by the header of the batch after it; a
// corrupt header there confirms nothing and condemns nothing (the read
// that reaches it reports it), so the batch is returned, whether it is the
// first of a Read from its position or follows another of a ReadOffset.
func TestReadConfirmationIgnoresACorruptHeader(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, true)
		v, prev := f.batches[1], f.batches[0]
		require.Greater(t, v.base, prev.last+1, "no gap before batch 1")
		f.xorHeader(t, 2, record.MagicOffset, []byte{0xff})
		s, _, err := f.open(t, false)
		require.NoError(t, err)
		defer s.Close()

		data, err := s.Read(v.pos, int(v.size))
		require.NoError(t, err)
		require.Len(t, data, int(v.size))

		data, err = s.ReadOffset(nil, prev.base, int(prev.size+v.size), math.MaxInt64)
		require.NoError(t, err)
		require.Len(t, data, int(prev.size+v.size))
	})
}

// TestReadFromPositionRefusesAnOverlapInACutHeader: a Read from a
// position whose first batch's base offset went bad up by one, so that it
// ends at the next batch's base offset, is refused when maxBytes cuts the
// next batch after its header: the header there, equal and not above,
// does not confirm it.
func TestReadFromPositionRefusesAnOverlapInACutHeader(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		v := f.batches[3]
		f.setBase(t, 3, v.base+1)
		s, _, err := f.open(t, false)
		require.NoError(t, err)
		defer s.Close()
		data, err := s.Read(v.pos, int(v.size)+record.HeaderSize)
		require.Errorf(t, err, "Read returned %d bytes", len(data))
		f.requireCorrupt(t, err, "Read")
	})
}

// TestWriteToFileOneByteShort: a .log one byte shorter than the range
// WriteTo is asked for gives io.ErrUnexpectedEOF.
func TestWriteToFileOneByteShort(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	appendBatches(t, s, &model{}, simpleBatch(t, 0, 4, 300))
	size := s.Size()
	require.NoError(t, os.Truncate(logPath(dir, 0), size-1))
	n, err := s.WriteTo(io.Discard, 0, size)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, size-1, n)
}

// TestHeaderScanShortRead: a .log cut under the segment within a batch
// header (a TruncateTo cuts the file before it lowers the size readers
// see) gives io.ErrUnexpectedEOF to a scan that reaches it, not a header
// pieced from the bytes that the scan's buffer held before.
func TestHeaderScanShortRead(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	m := &model{}
	appendBatches(t, s, m, simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50))
	victim := m.batches[2]
	require.NoError(t, os.Truncate(logPath(dir, 0), victim.pos+30))
	pos, err := s.Find(victim.base)
	require.ErrorIsf(t, err, io.ErrUnexpectedEOF, "Find = %d", pos)
}

// TestIndexEntryAfterItsBatchDistrusted: an offset index entry whose
// position moved to the batch before its own (its offset lies past that
// batch) is not followed: lookups answer as the log says, and the index is
// reported distrusted, to be rebuilt.
func TestIndexEntryAfterItsBatchDistrusted(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := f.middle(t)
		e := f.oidx[k]
		e.Position = f.batches[f.batchAt(t, e.Position)-1].pos
		f.setOffsetEntry(t, k, e)
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.False(t, needs, "the corruption is not one Open misses")
		require.NoError(t, f.checkOffsets(s))
		require.Equal(t, IndexDistrust{Offset: true}, s.IndexDistrusted())
	})
}

// TestTimeEntryOfACorruptBatchNotBlamed: a time index entry whose batch
// has its max timestamp changed on disk (its CRC fails) is not blamed for
// it: FindTime returns the batch's *record.CorruptError, and the time
// index is not distrusted.
func TestTimeEntryOfACorruptBatchNotBlamed(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := f.middleTime(t)
		e := f.tidx[k]
		b := f.batches[f.batchOf(t, e.Offset)]
		var x [8]byte
		binary.BigEndian.PutUint64(x[:], uint64(b.maxTs-1))
		icWriteAt(t, fsys, f.path(LogSuffix), x[:], b.pos+35) // the max timestamp
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.False(t, needs)
		off, ok, err := s.FindTime(e.Timestamp, icBase)
		require.ErrorIsf(t, err, record.ErrCorrupt, "FindTime = %d, %v", off, ok)
		require.Equal(t, IndexDistrust{}, s.IndexDistrusted(), "the log was bad, not the index")
	})
}

// TestMaxTimestampBelowChecksARaisedTimeEntry: a time index entry whose
// timestamp went up (staying below the next entry's, so that the file
// stays in order) is not taken for the max timestamp of the batches up to
// its offset: MaxTimestampBelow answers as the batches say.
func TestMaxTimestampBelowChecksARaisedTimeEntry(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const base = 3
		cfg := Config{IndexIntervalBytes: 1} // an offset index entry at every batch from the second
		s := mustCreate(t, fsys, dir, base, cfg)
		m := &model{base: base}
		for _, ts := range []int64{100, 500, 200, 300, 200, 300, 600} {
			appendBatches(t, s, m, mkBatch(t, 0, []int64{ts}, 5, -1))
		}
		require.Equal(t, []index.TimeEntry{{Timestamp: 500, Offset: base + 1}, {Timestamp: 600, Offset: base + 6}}, timeEntries(s))
		mustClose(t, s)
		editFile(t, fsys, filepath.Join(dir, FileName(base, TimeIndexSuffix)), func(f vfs.File) {
			_, err := f.WriteAt(entry12(550, 1), 0) // 500 → 550
			require.NoError(t, err)
		})
		s, needs := mustOpen(t, fsys, dir, base, cfg, true)
		require.False(t, needs, "the raised entry was found at Open")
		for off := int64(base - 1); off <= m.next()+1; off++ {
			got, err := s.MaxTimestampBelow(off)
			require.NoError(t, err)
			require.Equalf(t, m.maxTsBelow(off), got, "MaxTimestampBelow(%d)", off)
		}
		require.True(t, s.IndexDistrusted().Time)
	})
}

// TestMaxTimestampBelowCorruptLogNotBlamedOnIndex: MaxTimestampBelow
// from an offset index entry whose batch header is corrupt (the log went
// bad at a batch boundary, not the index) reports the corruption and
// blames no index, as the other lookups do.
func TestMaxTimestampBelowCorruptLogNotBlamedOnIndex(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := f.middle(t)
		e := f.oidx[k]
		icWriteAt(t, fsys, f.path(LogSuffix), []byte{record.Magic + 1}, e.Position+record.MagicOffset)
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.False(t, needs)
		got, err := s.MaxTimestampBelow(e.Offset + 1)
		var ce *record.CorruptError
		require.ErrorAsf(t, err, &ce, "MaxTimestampBelow = %d", got)
		require.Equal(t, e.Position, ce.Position)
		require.Equal(t, IndexDistrust{}, s.IndexDistrusted(), "the log was bad, not the index")
	})
}

// TestDefaultIndexInterval: the zero Config indexes every 4096 bytes of
// batches (index.interval.bytes' default), as a Config that says so.
func TestDefaultIndexInterval(t *testing.T) {
	entries := func(cfg Config) []index.OffsetEntry {
		s := mustCreate(t, newMemDir(t), memDir, 0, cfg)
		m := &model{}
		for range 12 {
			appendBatches(t, s, m, simpleBatch(t, 0, 2, 400))
		}
		return offsetEntries(s)
	}
	want := entries(Config{IndexIntervalBytes: 4096})
	require.NotEmpty(t, want)
	require.Equal(t, want, entries(Config{}))
}

// TestOpenChecksLastOffsetEntryAfterItsBatch: Open asks for recovery when
// the offset index's last entry has its position moved to the batch
// before its own: the batch there does not hold the entry's offset.
func TestOpenChecksLastOffsetEntryAfterItsBatch(t *testing.T) {
	icForEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newICFixture(t, fsys, dir, 80)
		k := len(f.oidx) - 1
		e := f.oidx[k]
		e.Position = f.batches[f.batchAt(t, e.Position)-1].pos
		f.setOffsetEntry(t, k, e)
		s, needs, err := Open(fsys, dir, icBase, icCfg, OpenOptions{})
		require.NoError(t, err)
		defer s.Close()
		require.True(t, needs, "Open does not ask for recovery")
	})
}

// TestOpenChecksLastTimeEntryBeforeTheTail: a time index whose last entry
// lies before the offset index's last one (the max timestamp did not grow
// after it) has that entry checked by Open too, with a short scan: one
// whose timestamp went up (the file stays in order) makes Open ask for
// recovery, not report a max timestamp no batch has.
func TestOpenChecksLastTimeEntryBeforeTheTail(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		const base = 3
		cfg := Config{IndexIntervalBytes: 1}
		s := mustCreate(t, fsys, dir, base, cfg)
		m := &model{base: base}
		for _, ts := range []int64{100, 500, 200, 300, 200, 300} {
			appendBatches(t, s, m, mkBatch(t, 0, []int64{ts}, 5, -1))
		}
		require.Equal(t, []index.TimeEntry{{Timestamp: 500, Offset: base + 1}}, timeEntries(s))
		mustClose(t, s)
		editFile(t, fsys, filepath.Join(dir, FileName(base, TimeIndexSuffix)), func(f vfs.File) {
			_, err := f.WriteAt(entry12(550, 1), 0) // 500 → 550
			require.NoError(t, err)
		})
		s, needs := mustOpen(t, fsys, dir, base, cfg, false)
		require.Truef(t, needs, "Open does not ask for recovery; MaxTimestamp %d", s.MaxTimestamp())
		_, err := s.Recover(0)
		require.NoError(t, err)
		require.Equal(t, int64(500), s.MaxTimestamp())
	})
}

// TestFitsBoundaries: a segment takes batches up to 2^31-1 bytes in all
// and a last offset up to 2^31-1 past its base, and no more.
func TestFitsBoundaries(t *testing.T) {
	s := &Segment{base: 1000}
	s.size.Store(math.MaxInt32 - 100)
	require.True(t, s.Fits(100, 1000))
	require.False(t, s.Fits(101, 1000))
	require.True(t, s.Fits(0, 1000+math.MaxInt32))
	require.False(t, s.Fits(0, 1000+math.MaxInt32+1))
}

// TestLastBatchMovedUpByOneWhileOpen: the last batch of a segment written
// in this process, whose base offset grows by one on disk, is reported:
// Append keeps the segment's limit at the offset right after its last
// batch, which the batch now reaches.
func TestLastBatchMovedUpByOneWhileOpen(t *testing.T) {
	for _, seal := range []bool{false, true} {
		t.Run(map[bool]string{false: "active", true: "sealed"}[seal], func(t *testing.T) {
			forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
				s := mustCreate(t, fsys, dir, 10, Config{})
				m := &model{base: 10}
				appendBatches(t, s, m, simpleBatch(t, 10, 2, 10), simpleBatch(t, 12, 3, 10))
				if seal {
					require.NoError(t, s.Seal(false))
				}
				requireSecondBatchMovedUpCorrupt(t, fsys, dir, s, m)
			})
		})
	}
}

// requireSecondBatchMovedUpCorrupt moves the base offset of s's second
// batch (offsets 12-14, at m.batches[1]) up by one on disk, so that the
// batch reaches the offset after the segment's end: a ReadOffset at 12
// must answer a *record.CorruptError.
func requireSecondBatchMovedUpCorrupt(t *testing.T, fsys vfs.FS, dir string, s *Segment, m *model) {
	t.Helper()
	editFile(t, fsys, logPath(dir, 10), func(f vfs.File) {
		var x [8]byte
		binary.BigEndian.PutUint64(x[:], 13)
		_, err := f.WriteAt(x[:], m.batches[1].pos)
		require.NoError(t, err)
	})
	data, err := s.ReadOffset(nil, 12, 1<<20, math.MaxInt64)
	var ce *record.CorruptError
	require.Truef(t, errors.As(err, &ce), "ReadOffset = %d bytes, %v; want a *record.CorruptError", len(data), err)
}

// TestTimeIndexFullFirst: a time index that fills before the offset index
// beside it (its entries are larger, and every index point grew the max
// timestamp) stops both: later Appends add no entry, and do not fail.
func TestTimeIndexFullFirst(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		cfg := Config{IndexIntervalBytes: 1, MaxIndexBytes: 24} // 3 offset entries, 2 time entries
		s := mustCreate(t, fsys, dir, 0, cfg)
		m := &model{}
		for i := range 6 {
			appendBatches(t, s, m, simpleBatch(t, int64(10*i), 2, 10))
		}
		require.True(t, s.IndexFull())
		require.Len(t, timeEntries(s), 2)
		require.Len(t, offsetEntries(s), 2, "the offset index stops where the time index did")
		checkState(t, s, m)
		checkFindTime(t, s, m)
	})
}

// TestTimeIndexEntriesAfterClose: a closed segment reports the number of
// entries its Close left in the .timeindex, not those of the index it
// closed (none); a discarded one, those it had.
func TestTimeIndexEntriesAfterClose(t *testing.T) {
	for _, discard := range []bool{false, true} {
		fsys := newMemDir(t)
		s := mustCreate(t, fsys, memDir, 0, Config{IndexIntervalBytes: 1})
		m := &model{}
		for i := range 4 {
			appendBatches(t, s, m, simpleBatch(t, int64(10*i), 2, 10))
		}
		want := s.TimeIndexEntries()
		require.NotZero(t, want)
		if discard {
			require.NoError(t, s.Discard())
			require.Equal(t, want, s.TimeIndexEntries(), "after Discard")
			continue
		}
		mustClose(t, s)
		entries, err := index.DecodeTimeEntries(readFile(t, fsys, filepath.Join(memDir, FileName(0, TimeIndexSuffix))), 0)
		require.NoError(t, err)
		require.Equal(t, len(entries), s.TimeIndexEntries(), "after Close")
	}
}

// TestScanConfirmsAtABlockEnd: on the OS, where a scan reads the file a
// block at a time, the header of the batch after a gap that a scan
// returns is the batch's own even when confirming it read the next block
// into the scan's buffer (the next header starts where the block ends),
// whether that next header is sound or corrupt: FindTime answers from it.
func TestScanConfirmsAtABlockEnd(t *testing.T) {
	for _, corrupt := range []bool{false, true} {
		dir := t.TempDir()
		s := mustCreate(t, vfs.OS, dir, 0, Config{IndexIntervalBytes: 1 << 20})
		after := mkBatch(t, 5, []int64{tsBase + 5}, 10, -1) // after a gap: offsets 1 to 4 are missing
		var first record.Batch
		for v := headerScanBlock; len(first) != headerScanBlock-len(after); v-- {
			require.Positive(t, v)
			first = mkBatch(t, 0, []int64{tsBase}, v, -1)
		}
		next := mkBatch(t, 6, []int64{tsBase + 6}, headerScanBlock+100, -1) // fills the next block
		for _, b := range []record.Batch{first, after, next} {
			require.NoError(t, s.Append(b))
		}
		if corrupt {
			editFile(t, vfs.OS, logPath(dir, 0), func(f vfs.File) {
				_, err := f.WriteAt([]byte{record.Magic + 1}, headerScanBlock+record.MagicOffset)
				require.NoError(t, err)
			})
		}
		off, ok, err := s.FindTime(tsBase+5, 1)
		require.NoErrorf(t, err, "corrupt next header %v", corrupt)
		require.True(t, ok)
		require.Equalf(t, int64(5), off, "corrupt next header %v", corrupt)
	}
}

// TestMaxTimestampBelowChecksOffsets: a base offset gone bad on disk down
// into the batch before it is reported by a MaxTimestampBelow whose walk
// of the headers reaches the batch, as the other walks report it.
func TestMaxTimestampBelowChecksOffsets(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		f := newOFFixture(t, fsys, dir, 12, false)
		tried := 0
		for victim := 1; victim < len(f.batches)-1; victim++ {
			f.restore(t)
			v := f.batches[victim]
			f.setBase(t, victim, v.base-1)
			s, _, err := f.open(t, false)
			if err != nil {
				f.requireCorrupt(t, err, "Recover")
				continue
			}
			got, err := s.MaxTimestampBelow(v.last + 2)
			mustClose(t, s)
			require.Errorf(t, err, "batch %d moved down: MaxTimestampBelow = %d", victim, got)
			f.requireCorrupt(t, err, "MaxTimestampBelow")
			tried++
		}
		require.NotZero(t, tried)
	})
}

// TestLookupsReportBadRecords: MaxTimestampBelow decodes the batch
// holding end for its records below end, FindTime the first batch that may
// hold its answer; records that do not decode (a compressed batch whose
// data is not, or a record whose length is bad, with the batch's CRC
// updated) are an error, not an answer from the batches before or after.
func TestLookupsReportBadRecords(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 10))
		for _, breakIt := range []func(b record.Batch){
			func(b record.Batch) { b[22] |= byte(compression.Gzip) }, // the codec bits of the attributes
			func(b record.Batch) { b[record.HeaderSize] = 0x7f },     // the first record's length
		} {
			bad := simpleBatch(t, s.NextOffset(), 3, 10)
			breakIt(bad)
			bad.UpdateCRC()
			require.NoError(t, bad.Validate(0), "a batch the segment takes")
			require.NoError(t, s.Append(bad))
			got, err := s.MaxTimestampBelow(bad.BaseOffset() + 1)
			require.ErrorIsf(t, err, record.ErrCorrupt, "MaxTimestampBelow = %d", got)
			off, ok, err := s.FindTime(bad.MaxTimestamp(), bad.BaseOffset())
			require.ErrorIsf(t, err, record.ErrCorrupt, "FindTime = %d, %v", off, ok)
		}
	})
}

// TestTimeIndexEntriesOfOneEntryAtTheBase: a time index whose one entry
// is at the segment's base offset, with a timestamp other than 0, holds
// that entry (only (0, base) reads as padding).
func TestTimeIndexEntriesOfOneEntryAtTheBase(t *testing.T) {
	fsys := newMemDir(t)
	s := mustCreate(t, fsys, memDir, 0, Config{IndexIntervalBytes: 1})
	m := &model{}
	appendBatches(t, s, m, mkBatch(t, 0, []int64{tsBase}, 10, -1))
	appendBatches(t, s, m, mkBatch(t, 0, []int64{tsBase - 1}, 10, -1)) // an index point; the max does not grow
	require.Equal(t, []index.TimeEntry{{Timestamp: tsBase, Offset: 0}}, timeEntries(s))
	require.Equal(t, 1, s.TimeIndexEntries())
}

// TestMaxTimestampOffsetIsTheBatchsLast: MaxTimestampOffset is the last
// offset of the first batch with the segment's max timestamp, as Append
// and Open's scan of the batches past the indexes both take it.
func TestMaxTimestampOffsetIsTheBatchsLast(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		for _, ts := range [][]int64{{100, 101, 102}, {300, 200, 250}, {200, 300, 100}} {
			appendBatches(t, s, m, mkBatch(t, 0, ts, 10, -1))
		}
		require.Equal(t, m.batches[1].last, s.MaxTimestampOffset())
		mustClose(t, s)
		// Batches past what the indexes say (a crash synced the .log and
		// not its indexes): Open's scan of the tail takes the max.
		tail := mkBatch(t, m.next(), []int64{500, 400, 450}, 10, -1)
		appendToFile(t, fsys, logPath(dir, 0), tail)
		s, needs := mustOpen(t, fsys, dir, 0, Config{}, false)
		require.False(t, needs)
		require.Equal(t, int64(500), s.MaxTimestamp())
		require.Equal(t, tail.LastOffset(), s.MaxTimestampOffset())
	})
}

// TestAppendRefusesABatchOneByteShort: data that ends one byte before its
// last batch does is not whole batches: Append refuses it and writes
// nothing.
func TestAppendRefusesABatchOneByteShort(t *testing.T) {
	fsys := newMemDir(t)
	s := mustCreate(t, fsys, memDir, 0, Config{})
	b := simpleBatch(t, 0, 2, 10)
	var ce *record.CorruptError
	require.ErrorAs(t, s.Append(b[:len(b)-1]), &ce)
	require.Zero(t, s.Size())
	require.Zero(t, s.NextOffset())
}

// TestReadHeaderAcrossChunks: on the memory FS, a batch whose header two
// chunks hold (it was not written by one Write), in a segment that Recover
// checked, is read whole from its position and from its offset, however
// few of its bytes the first chunk holds.
func TestReadHeaderAcrossChunks(t *testing.T) {
	for _, in := range []int64{5, 20, 40, record.HeaderSize - 1} {
		fsys := newMemDir(t)
		m, k := splitModel(t)
		split := m.batches[k]
		writeSplit(t, fsys, m.bytes(), int(split.pos+in))
		s, _ := mustOpen(t, fsys, memDir, 0, Config{}, true)
		_, err := s.Recover(0)
		require.NoError(t, err)
		data, err := s.Read(split.pos, 1)
		require.NoErrorf(t, err, "header cut %d bytes in", in)
		require.Equalf(t, split.data, data, "Read: header cut %d bytes in", in)
		data, err = s.ReadOffset(nil, split.base, 1, split.last+1)
		require.NoErrorf(t, err, "header cut %d bytes in", in)
		require.Equalf(t, split.data, data, "ReadOffset: header cut %d bytes in", in)
		mustClose(t, s)
	}
}

// TestOSReadsCheckAppendedBatches: on the OS, batches that this Segment
// appended itself still have their CRCs checked when they are read (the
// page cache may be refilled from a disk that went bad): a record byte
// changed on disk is reported, not served.
func TestOSReadsCheckAppendedBatches(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	m := &model{}
	appendBatches(t, s, m, simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50))
	victim := m.batches[1]
	editFile(t, vfs.OS, logPath(dir, 0), func(f vfs.File) {
		_, err := f.WriteAt([]byte{'!'}, victim.pos+victim.size-5) // in the last record's value
		require.NoError(t, err)
	})
	data, err := s.Read(0, 1<<20)
	require.NoError(t, err)
	require.Equal(t, m.batches[0].data, data, "Read from 0 stops before the changed batch")
	var ce *record.CorruptError
	_, err = s.Read(victim.pos, 1<<20)
	require.ErrorAs(t, err, &ce)
	_, err = s.ReadOffset(nil, victim.base, 1<<20, math.MaxInt64)
	require.ErrorAs(t, err, &ce)
}

// TestOpenChecksTheLastBatchEndingShort: a sealed segment whose batches
// end below the limit it is opened with (the base offset of the segment
// after it) has its last batch's CRC checked by Open: a last offset delta
// that shrank on disk would hide that batch's last record, which a read of
// its offset would then skip for the next segment's. (The last batch has
// not the segment's max timestamp, so that the time index does not tell.)
func TestOpenChecksTheLastBatchEndingShort(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		appendBatches(t, s, m, mkBatch(t, 0, []int64{500, 500, 500}, 10, -1), mkBatch(t, 0, []int64{100, 101, 102}, 10, -1))
		mustClose(t, s)
		last := m.batches[1]
		editFile(t, fsys, logPath(dir, 0), func(f vfs.File) {
			_, err := f.WriteAt([]byte{0, 0, 0, 1}, last.pos+lastDeltaOffset) // 2 → 1
			require.NoError(t, err)
		})
		s, needs, err := Open(fsys, dir, 0, Config{}, OpenOptions{Limit: m.next()})
		require.NoError(t, err)
		defer s.Close()
		require.Truef(t, needs, "Open does not ask for recovery; NextOffset %d, want %d", s.NextOffset(), m.next())
		_, err = s.Recover(math.MaxInt64)
		require.ErrorIs(t, err, record.ErrCorrupt)
	})
}

// TestSealSetsTheLimit: Seal of a segment that appended nothing since it
// was opened (with no End: after a crash, say) still sets its limit at the
// offset after its last batch, so that a base offset of that batch that
// grows on disk afterwards is reported, not served.
func TestSealSetsTheLimit(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 10, Config{})
		m := &model{base: 10}
		appendBatches(t, s, m, simpleBatch(t, 10, 2, 10), simpleBatch(t, 12, 3, 10))
		mustClose(t, s)
		s, needs := mustOpen(t, fsys, dir, 10, Config{}, true)
		require.False(t, needs)
		require.NoError(t, s.Seal(false))
		requireSecondBatchMovedUpCorrupt(t, fsys, dir, s, m)
	})
}

// TestUnsealLiftsTheEnd: a segment opened with an End its batches pass (a
// stale clean-shutdown marker) asks for recovery; Unseal lifts that End,
// and Recover then keeps every batch instead of refusing those past it.
func TestUnsealLiftsTheEnd(t *testing.T) {
	forEachFS(t, func(t *testing.T, fsys vfs.FS, dir string) {
		s := mustCreate(t, fsys, dir, 0, Config{})
		m := &model{}
		appendBatches(t, s, m, simpleBatch(t, 0, 2, 10), simpleBatch(t, 0, 3, 10))
		mustClose(t, s)
		s, needs, err := Open(fsys, dir, 0, Config{}, OpenOptions{Active: true, End: m.batches[0].last + 1})
		require.NoError(t, err)
		defer s.Close()
		require.True(t, needs)
		require.NoError(t, s.Unseal())
		res, err := s.Recover(0)
		require.NoError(t, err)
		require.Equal(t, len(m.batches), res.Batches)
		require.Equal(t, m.next(), s.NextOffset())
	})
}
