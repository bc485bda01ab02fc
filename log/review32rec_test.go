package log

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

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
	for _, v := range []string{"a", "b", "a", "b", "a", "b"} {
		appendOK(t, l, valueBatch(t, 1, v))
	}
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
