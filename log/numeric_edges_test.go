package log

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestNegativeLeaderEpochIsNone: an append with a negative LeaderEpoch
// (Kafka's -1, NO_PARTITION_LEADER_EPOCH, or any below) records no epoch,
// as recovery takes a batch's negative epoch for none. It was recorded, in
// a checkpoint that the next Open refused as malformed (ErrBadCheckpoint):
// the log could not be opened again. The largest epoch, math.MaxInt32, is
// an epoch like any other.
func TestNegativeLeaderEpochIsNone(t *testing.T) {
	for _, epoch := range []int32{-1, -2, math.MinInt32, math.MaxInt32} {
		e := newEnv(t)
		l := e.open(Config{})
		_, err := l.Append(context.Background(), valueBatch(t, 1, "a"), AppendOptions{LeaderEpoch: epoch})
		require.NoError(t, err, "epoch %d", epoch)
		var want []EpochEntry
		if epoch >= 0 {
			want = []EpochEntry{{Epoch: epoch, StartOffset: 0}}
		}
		require.Equal(t, want, l.LeaderEpochs(), "epoch %d", epoch)
		// A later epoch starts where it is first appended.
		_, err = l.Append(context.Background(), valueBatch(t, 2, "b"), AppendOptions{LeaderEpoch: max(epoch, 3)})
		require.NoError(t, err)
		require.NoError(t, l.Close())
		l = e.open(Config{})
		if epoch < 0 {
			require.Equal(t, []EpochEntry{{Epoch: 3, StartOffset: 1}}, l.LeaderEpochs(), "epoch %d", epoch)
		} else {
			require.Equal(t, want, l.LeaderEpochs(), "epoch %d", epoch)
		}
		require.Len(t, readAll(t, l, 0), 2)
		require.NoError(t, l.Close())
	}
}

// hugeBatches returns data holding batches, each of one record whose
// value is size zero bytes, without touching the values' memory (a fresh
// large allocation is zero pages, which reads, the CRC's, do not make
// resident).
func hugeBatches(t *testing.T, batches, size int) []byte {
	t.Helper()
	var rec []byte
	rec = append(rec, 0)                        // attributes
	rec = binary.AppendVarint(rec, 0)           // timestamp delta
	rec = binary.AppendVarint(rec, 0)           // offset delta
	rec = binary.AppendVarint(rec, -1)          // null key
	rec = binary.AppendVarint(rec, int64(size)) // value length
	body := len(rec) + size + 1                 // and the header count, 0
	prefix := binary.AppendVarint(nil, int64(body))
	one := record.HeaderSize + len(prefix) + body
	tmpl := valueBatch(t, 1, "x")
	data := make([]byte, batches*one)
	for i := range batches {
		b := data[i*one : (i+1)*one]
		copy(b, tmpl[:record.HeaderSize])
		binary.BigEndian.PutUint32(b[8:], uint32(one-12)) // the batch length
		p := copy(b[record.HeaderSize:], prefix) + record.HeaderSize
		copy(b[p:], rec)
		// The value's bytes are zero already, and so is the header count.
		record.Batch(b).UpdateCRC()
	}
	return data
}

// TestAppendPastASegmentIsRefused: an append of several batches, each
// within max.message.bytes, that add up to more than a segment can hold
// (2 GiB - 1: its positions are int32s) is refused with ErrRecordTooLarge,
// and the log takes the next append. It fenced the log: the empty active
// segment refused the write (segment.ErrFull), a write failure to the log.
func TestAppendPastASegmentIsRefused(t *testing.T) {
	if testing.Short() || testkit.RaceEnabled || math.MaxInt == math.MaxInt32 {
		t.Skip("a 2 GiB append: not under -short, -race, nor on 32 bits")
	}
	e := newEnv(t)
	cfg := Config{SegmentBytes: math.MaxInt32, MaxMessageBytes: math.MaxInt32, Sync: SyncNever}
	l := e.open(cfg)
	defer l.Close()
	data := hugeBatches(t, 2, 1<<30+1<<22)
	require.Greater(t, len(data), math.MaxInt32)
	_, err := l.Append(context.Background(), data, AppendOptions{})
	require.ErrorIs(t, err, ErrRecordTooLarge)
	data = nil
	appendOK(t, l, valueBatch(t, 1, "a"))
	require.Equal(t, int64(1), l.LogEndOffset())
}

// TestSegmentBasePastTheLargestIsCorrupt: a directory whose segment file
// names a base offset past the largest a segment can have (its indexes
// hold offsets relative to it in 32 bits) makes Open fail with
// record.ErrCorrupt, as other damage it cannot recover from does. Open
// failed with the index's untyped invalid-argument error, none of those
// it documents.
func TestSegmentBasePastTheLargestIsCorrupt(t *testing.T) {
	for _, base := range []int64{maxSegmentBase + 1, math.MaxInt64} {
		fs := vfs.NewMem()
		require.NoError(t, fs.MkdirAll("/d", 0o755))
		f, err := fs.Create("/d/" + segment.FileName(base, segment.LogSuffix))
		require.NoError(t, err)
		require.NoError(t, f.Close())
		_, err = Open("/d", Config{}, Options{FS: fs})
		require.ErrorIs(t, err, record.ErrCorrupt, "base %d", base)
	}
	// The largest base itself is a segment's.
	fs := vfs.NewMem()
	require.NoError(t, fs.MkdirAll("/d", 0o755))
	f, err := fs.Create("/d/" + segment.FileName(maxSegmentBase, segment.LogSuffix))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	l, err := Open("/d", Config{}, Options{FS: fs})
	require.NoError(t, err)
	require.Equal(t, int64(maxSegmentBase), l.LogEndOffset())
	// It is the largest log end too: an append is refused, not fenced
	// (it was once taken; see TestAppendPastTheLastOffsetIsRefused).
	_, err = l.Append(context.Background(), valueBatch(t, 1, "a"), AppendOptions{})
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.Equal(t, int64(maxSegmentBase), l.LogEndOffset())
	require.NoError(t, l.Close())
}

// TestSwapBasePastTheLargestIsCorrupt: a compaction's swap file whose
// base offset no segment can have makes Open fail with record.ErrCorrupt,
// as such a segment file does, before Open changes anything (the swap is
// not completed, nor a temporary file removed); beside a log's segments
// it is not taken for their tail and removed. Open renamed it to a
// segment's .log and then failed with the index's untyped error (where
// no other segment was), or dropped it (where one was); a temporary file
// listed before a bad segment file was removed first.
func TestSwapBasePastTheLargestIsCorrupt(t *testing.T) {
	for _, withLog := range []bool{false, true} {
		for _, name := range []string{
			segment.FileName(maxSegmentBase+1, segment.LogSuffix+swapSuffix),
			segment.FileName(math.MaxInt64, segment.LogSuffix+swapSuffix),
			segment.FileName(maxSegmentBase+1, segment.LogSuffix),
		} {
			fs := vfs.NewMem()
			require.NoError(t, fs.MkdirAll("/d", 0o755))
			if withLog {
				l, err := Open("/d", Config{}, Options{FS: fs})
				require.NoError(t, err)
				appendOK(t, l, valueBatch(t, 1, "a"))
				require.NoError(t, l.Close())
			}
			for _, n := range []string{name, segment.FileName(0, segment.IndexSuffix+".tmp")} {
				f, err := fs.Create("/d/" + n)
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}
			before, err := fs.List("/d")
			require.NoError(t, err)
			_, err = Open("/d", Config{}, Options{FS: fs})
			require.ErrorIs(t, err, record.ErrCorrupt, "%s, with a log %v", name, withLog)
			after, err := fs.List("/d")
			require.NoError(t, err)
			require.ElementsMatch(t, before, after, "%s, with a log %v: a refused Open changed the directory", name, withLog)
		}
	}
}

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

// TestBatchPastTheLastEndRefusesTheWhole: an append of
// several batches whose second would take the log end past
// MaxLogEndOffset is refused whole with ErrOffsetOutOfRange, on a
// LogAppendTime topic too (whose batches the append stamps): nothing is
// written, the caller's bytes are as they were, the log is not fenced, no
// roll happened, and an append that fits is taken after it, the log
// reopening at MaxLogEndOffset.
func TestBatchPastTheLastEndRefusesTheWhole(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []TimestampType{CreateTime, LogAppendTime} {
		e := newEnv(t)
		require.NoError(t, vfs.MkdirAllDurable(e.fs, e.dir, 0o755))
		require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, MaxLogEndOffset-3))
		cfg := Config{TimestampType: tt, SegmentTime: time.Millisecond}
		l := e.open(cfg)
		e.clock.Advance(time.Hour) // a roll is due at the next append
		data := append(valueBatch(t, 1, "a"), valueBatch(t, 2, "b", "c", "d")...)
		before := bytes.Clone(data)
		segs := l.Segments()
		res, err := l.Append(ctx, data, AppendOptions{LeaderEpoch: 3})
		require.ErrorIs(t, err, ErrOffsetOutOfRange, "%v", tt)
		require.Equal(t, before, data, "%v: the caller's bytes", tt)
		require.Equal(t, Offsets{Start: MaxLogEndOffset - 3, Durable: MaxLogEndOffset - 3, End: MaxLogEndOffset - 3}, l.Offsets(), "%v", tt)
		require.Equal(t, segs, l.Segments(), "%v: no roll", tt)
		require.Empty(t, readAll(t, l, MaxLogEndOffset-3), "%v", tt)
		require.Zero(t, l.Size(), "%v", tt)

		res = appendOK(t, l, append(valueBatch(t, 1, "a"), valueBatch(t, 2, "b", "c")...))
		require.Equal(t, int64(MaxLogEndOffset-3), res.FirstOffset, "%v", tt)
		require.Equal(t, int64(MaxLogEndOffset-1), res.LastOffset, "%v", tt)
		require.Len(t, readAll(t, l, MaxLogEndOffset-3), 3, "%v", tt)
		require.NoError(t, l.Close())
		l = e.open(cfg)
		require.Equal(t, Offsets{Start: MaxLogEndOffset - 3, Durable: MaxLogEndOffset, End: MaxLogEndOffset}, l.Offsets(), "%v", tt)
		_, err = l.Append(ctx, valueBatch(t, 1, "e"), AppendOptions{})
		require.ErrorIs(t, err, ErrOffsetOutOfRange, "%v", tt)
		require.NoError(t, l.Close())
	}
}

// TestCompactionAtTheLastEnd: a compacted log whose end reached
// MaxLogEndOffset rolls there, is cleaned, truncated and appended to again
// up to MaxLogEndOffset, and reopens with the records kept, through the
// MemFS crash model too.
func TestCompactionAtTheLastEnd(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	require.NoError(t, vfs.MkdirAllDurable(e.fs, e.dir, 0o755))
	const from = MaxLogEndOffset - 6
	require.NoError(t, writeOffset(e.fs, e.dir, logStartFile, from))
	cfg := Config{CleanupPolicy: Compact, Sync: SyncAlways}
	l := e.open(cfg)
	appendEach(t, l, 1, "a", "b", "a", "b", "a", "b")
	_, err := l.Append(ctx, valueBatch(t, 1, "c"), AppendOptions{})
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, res.RecordsRemoved)
	offsets := func() []int64 {
		var out []int64
		for _, r := range readAll(t, l, from) {
			out = append(out, r.Offset)
		}
		return out
	}
	require.Equal(t, []int64{MaxLogEndOffset - 2, MaxLogEndOffset - 1}, offsets())
	require.Equal(t, Offsets{Start: from, Durable: MaxLogEndOffset, End: MaxLogEndOffset}, l.Offsets())

	end, err := l.TruncateTo(MaxLogEndOffset - 1)
	require.NoError(t, err)
	require.Equal(t, int64(MaxLogEndOffset-1), end)
	appendOK(t, l, valueBatch(t, 1, "c"))
	_, err = l.Append(ctx, valueBatch(t, 1, "d"), AppendOptions{})
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.Equal(t, []int64{MaxLogEndOffset - 2, MaxLogEndOffset - 1}, offsets())

	l = e.crashReopen(l, cfg)
	require.Equal(t, Offsets{Start: from, Durable: MaxLogEndOffset, End: MaxLogEndOffset}, l.Offsets())
	require.Equal(t, []int64{MaxLogEndOffset - 2, MaxLogEndOffset - 1}, offsets())
	_, err = l.Compact(ctx)
	require.NoError(t, err)
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Equal(t, []int64{MaxLogEndOffset - 2, MaxLogEndOffset - 1}, offsets())
	require.NoError(t, l.Close())
}

// TestSwapPastItsSegmentsRangeIsCorrupt: a compaction's swap file
// whose last batch's base offset went bad on disk (no CRC covers it), now
// past the range of offsets a segment at the swap's base can hold (2^31-1
// past it), makes Open fail with record.ErrCorrupt before it changes
// anything. Open completed the swap up to the bad end, removing every
// segment after it — the active one too, durable records — and only
// then found the cleaned segment corrupt.
func TestSwapPastItsSegmentsRangeIsCorrupt(t *testing.T) {
	e := newEnv(t)
	writeSegmentFile(t, e.fs, e.dir, 0, gapBatch(t, 0, 9))
	writeSegmentFile(t, e.fs, e.dir, 10, gapBatch(t, 10, 9))
	writeSegmentFile(t, e.fs, e.dir, 20, gapBatch(t, 20, 0))
	bad := gapBatch(t, 5, 4)
	record.Batch(bad).SetBaseOffset(1 << 40)
	writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(0, segment.LogSuffix+swapSuffix)),
		append(gapBatch(t, 0, 0), bad...))
	before, err := e.fs.List(e.dir)
	require.NoError(t, err)
	_, err = Open(e.dir, Config{CleanupPolicy: Compact}, Options{FS: e.fs, Clock: e.clock})
	require.ErrorIs(t, err, record.ErrCorrupt)
	after, err := e.fs.List(e.dir)
	require.NoError(t, err)
	require.ElementsMatch(t, before, after, "a refused Open changed the directory")
}
