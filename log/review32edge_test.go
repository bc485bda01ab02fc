package log

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// gapBatch returns one stored batch of one record at base whose last
// offset delta is delta: what compaction leaves of a batch whose other
// records it removed.
func gapBatch(t *testing.T, base int64, delta int32) []byte {
	t.Helper()
	var bld record.Builder
	bld.Reset()
	bld.SetLastOffsetDelta(delta)
	bld.Append(1, []byte("k"), []byte("v"), nil)
	b, err := bld.Finish(compression.None)
	require.NoError(t, err)
	b.SetBaseOffset(base)
	return append([]byte(nil), b...)
}

// writeSegmentFile writes data, durably, as the .log of the segment at
// base, with no index files (Open rebuilds them).
func writeSegmentFile(t *testing.T, fsys vfs.FS, dir string, base int64, data []byte) {
	t.Helper()
	require.NoError(t, vfs.MkdirAllDurable(fsys, dir, 0o755))
	f, err := fsys.Create(filepath.Join(dir, segment.FileName(base, segment.LogSuffix)))
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
}

// TestAppendPastTheLastOffsetIsRefused: an append whose offsets
// would take the log end past maxSegmentBase, where no segment can start
// (its indexes hold offsets relative to its base in 32 bits), is refused
// with ErrOffsetOutOfRange, nothing written and the log not fenced. It
// was taken: past maxSegmentBase, retention could not roll the active
// segment (ErrRollFailed at every round), DeleteRecordsBefore the end
// wrote a log start offset checkpoint that the next Open refused
// (ErrBadCheckpoint: the log could not be opened again), and an append
// whose last offset was math.MaxInt64 made the log end wrap to
// math.MinInt64, after which no record of the log could be read and the
// next append failed to roll at a negative base.
func TestAppendPastTheLastOffsetIsRefused(t *testing.T) {
	ctx := context.Background()
	t.Run("from a log start checkpoint", func(t *testing.T) {
		e := newEnv(t)
		require.NoError(t, vfs.MkdirAllDurable(e.fs, e.dir, 0o755))
		require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, maxSegmentBase-2))
		cfg := Config{RetentionTime: time.Second}
		l := e.open(cfg)
		require.Equal(t, int64(maxSegmentBase-2), appendOK(t, l, valueBatch(t, 1, "a")).FirstOffset)
		_, err := l.Append(ctx, valueBatch(t, 1, "b", "c"), AppendOptions{})
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		require.Equal(t, Offsets{Start: maxSegmentBase - 2, Durable: maxSegmentBase - 1, End: maxSegmentBase - 1}, l.Offsets())
		require.Equal(t, int64(maxSegmentBase-1), appendOK(t, l, valueBatch(t, 1, "b")).LastOffset)
		_, err = l.Append(ctx, valueBatch(t, 1, "c"), AppendOptions{})
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		require.Len(t, readAll(t, l, maxSegmentBase-2), 2)

		// The log at its end still rolls, and its start gets there.
		e.clock.Advance(time.Hour)
		_, err = l.ApplyRetention(context.Background())
		require.NoError(t, err)
		require.Equal(t, Offsets{Start: maxSegmentBase, Durable: maxSegmentBase, End: maxSegmentBase}, l.Offsets())
		require.NoError(t, l.Close())
		l = e.open(cfg)
		low, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset())
		require.NoError(t, err)
		require.Equal(t, int64(maxSegmentBase), low)
		require.NoError(t, l.Close())
		l = e.open(cfg)
		require.Equal(t, Offsets{Start: maxSegmentBase, Durable: maxSegmentBase, End: maxSegmentBase}, l.Offsets())
		require.NoError(t, l.Close())
	})
	t.Run("from a segment that ends at math.MaxInt64", func(t *testing.T) {
		// A compacted batch whose one record kept is the first of the
		// offsets up to math.MaxInt64 - 1: the log end is math.MaxInt64.
		e := newEnv(t)
		writeSegmentFile(t, e.fs, e.dir, maxSegmentBase, gapBatch(t, maxSegmentBase, math.MaxInt32-1))
		l := e.open(Config{})
		require.Equal(t, int64(math.MaxInt64), l.LogEndOffset())
		_, err := l.Append(ctx, valueBatch(t, 1, "a"), AppendOptions{})
		require.ErrorIs(t, err, ErrOffsetOutOfRange)
		require.Equal(t, int64(math.MaxInt64), l.LogEndOffset())
		require.Len(t, readAll(t, l, maxSegmentBase), 1)
		require.NoError(t, l.Close())
	})
}

// TestBatchEndingAtMaxInt64IsCorrupt: a segment whose batch ends
// at offset math.MaxInt64, whose next offset no int64 holds, is corrupt:
// Open fails with record.ErrCorrupt. It opened, the log end wrapping (to
// a log that reported offsets [0, 0) and read none of its records).
func TestBatchEndingAtMaxInt64IsCorrupt(t *testing.T) {
	for _, withIndexes := range []bool{false, true} {
		e := newEnv(t)
		writeSegmentFile(t, e.fs, e.dir, maxSegmentBase, gapBatch(t, maxSegmentBase, math.MaxInt32-1))
		if withIndexes {
			// Indexes and a clean shutdown, so that Open trusts the
			// segment and reads only its tail.
			l := e.open(Config{})
			require.NoError(t, l.Close())
		}
		data := readAllFile(t, e.fs, filepath.Join(e.dir, segment.FileName(maxSegmentBase, segment.LogSuffix)))
		b := record.Batch(data)
		b.SetBaseOffset(maxSegmentBase + 1) // [maxSegmentBase+1, math.MaxInt64], the CRC unchanged
		writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(maxSegmentBase, segment.LogSuffix)), data)
		_, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
		require.ErrorIs(t, err, record.ErrCorrupt, "with indexes %v", withIndexes)
	}
}

// TestAppendOfMoreOffsetsThanASegmentHolds: an append of more
// records than a segment has offsets for (2^31 - 1: its indexes hold
// offsets relative to its base in 32 bits), which compressed batches
// within max.message.bytes can carry, is refused with ErrRecordTooLarge,
// and the log takes the next append. The segment refused the write
// (segment.ErrFull, after a roll to a new segment it did not fit either),
// a write failure to the log, which fenced it. It builds some 2 GB of
// batches and validates 2^31 records (minutes of CPU): it runs only with
// RUNNEL_HUGE_APPEND=1, on 64 bits.
func TestAppendOfMoreOffsetsThanASegmentHolds(t *testing.T) {
	if os.Getenv("RUNNEL_HUGE_APPEND") == "" || math.MaxInt == math.MaxInt32 {
		t.Skip("2^31 records in one append: set RUNNEL_HUGE_APPEND=1 (64-bit only)")
	}
	var bld record.Builder
	bld.Reset()
	for bld.Size() < compression.DefaultDecodeLimit-16 {
		bld.Append(0, nil, nil, nil)
	}
	one, err := bld.Finish(compression.Zstd)
	require.NoError(t, err)
	k := int64(bld.NumRecords())
	n := int((math.MaxInt32 + k) / k) // batches for 2^31 records
	data := make([]byte, 0, n*len(one))
	for range n {
		data = append(data, one...)
	}
	require.LessOrEqual(t, len(data), math.MaxInt32)
	e := newEnv(t)
	cfg := Config{Sync: SyncNever, MaxMessageBytes: len(one)}
	l := e.open(cfg)
	defer l.Close()
	appendOK(t, l, valueBatch(t, 1, "a")) // the active segment is not empty: the append rolls
	_, err = l.Append(context.Background(), data, AppendOptions{})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	data = nil
	appendOK(t, l, valueBatch(t, 1, "b"))
	require.Equal(t, int64(2), l.LogEndOffset())
}

// TestSwapEndingAtMaxInt64IsCorrupt: a compaction's swap file
// whose batch ends at math.MaxInt64 (no offset follows it: the segment
// refuses it) makes Open fail with record.ErrCorrupt before Open changes
// anything, as a swap whose batches went bad does. Open completed the
// swap — removing the segment it replaces, renaming the swap — and only
// then found the segment corrupt; scanEnd had taken the batch, its end
// wrapping to math.MinInt64.
func TestSwapEndingAtMaxInt64IsCorrupt(t *testing.T) {
	e := newEnv(t)
	writeSegmentFile(t, e.fs, e.dir, maxSegmentBase, gapBatch(t, maxSegmentBase, 0))
	writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(maxSegmentBase, segment.LogSuffix+swapSuffix)),
		gapBatch(t, maxSegmentBase+1, math.MaxInt32-1))
	before, err := e.fs.List(e.dir)
	require.NoError(t, err)
	_, err = Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	require.ErrorIs(t, err, record.ErrCorrupt)
	after, err := e.fs.List(e.dir)
	require.NoError(t, err)
	require.ElementsMatch(t, before, after, "a refused Open changed the directory")
}

// TestSwapFilePastMaxInt32IsCorrupt: a compaction's swap file
// larger than math.MaxInt32 bytes, which no segment is, makes Open fail
// with record.ErrCorrupt before it reads a batch, changing nothing. Under
// GOARCH=386 a batch header in it claiming 2 GiB - 1 bytes made Open
// panic (the batch's size wrapped an int); on 64 bits it was read into
// one buffer, 2 GiB, to fail its CRC. The file is sparse.
func TestSwapFilePastMaxInt32IsCorrupt(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("sparse files: NTFS allocates a file's length unless it is marked sparse")
	}
	dir := t.TempDir()
	hdr := gapBatch(t, 0, 0)[:record.HeaderSize]
	binary.BigEndian.PutUint32(hdr[8:], math.MaxInt32) // the batch length
	path := filepath.Join(dir, segment.FileName(0, segment.LogSuffix+swapSuffix))
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = f.Write(hdr)
	require.NoError(t, err)
	const size int64 = math.MaxInt32 + 4096
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.Skipf("no sparse file of %d bytes here: %v", size, err)
	}
	require.NoError(t, f.Close())
	_, err = Open(dir, Config{}, Options{FS: vfs.OS})
	require.ErrorIs(t, err, record.ErrCorrupt)
	names, err := vfs.OS.List(dir)
	require.NoError(t, err)
	require.Equal(t, []string{segment.FileName(0, segment.LogSuffix+swapSuffix)}, names)
}

// TestLogPastTheLastEndKeepsOpening: a log whose segments on disk
// end past MaxLogEndOffset (no runnel appends there now: such files are
// crafted, or an older runnel's) still opens and reads; a
// DeleteRecordsBefore past MaxLogEndOffset is refused with
// ErrOffsetOutOfRange, and time retention keeps the active segment
// rather than roll it where no segment can start. The deletion wrote a
// log start offset checkpoint that the next Open refused
// (ErrBadCheckpoint: the log could not be opened again), and retention
// failed with ErrRollFailed at every round.
func TestLogPastTheLastEndKeepsOpening(t *testing.T) {
	e := newEnv(t)
	writeSegmentFile(t, e.fs, e.dir, maxSegmentBase, gapBatch(t, maxSegmentBase, math.MaxInt32-1))
	cfg := Config{RetentionTime: time.Second}
	l := e.open(cfg)
	require.Equal(t, int64(math.MaxInt64), l.LogEndOffset())
	e.clock.Advance(time.Hour) // the record, stamped 1 ms, is past retention.ms
	_, err := l.ApplyRetention(context.Background())
	require.NoError(t, err)
	require.Len(t, readAll(t, l, maxSegmentBase), 1, "the active segment stays")
	for _, off := range []int64{maxSegmentBase + 1, math.MaxInt64} {
		_, err = l.DeleteRecordsBefore(context.Background(), off)
		require.ErrorIs(t, err, ErrOffsetOutOfRange, "offset %d", off)
	}
	low, err := l.DeleteRecordsBefore(context.Background(), maxSegmentBase)
	require.NoError(t, err)
	require.Equal(t, int64(maxSegmentBase), low)
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Equal(t, Offsets{Start: maxSegmentBase, Durable: math.MaxInt64, End: math.MaxInt64}, l.Offsets())
	require.NoError(t, l.Close())
}
