package log

import (
	"context"
	"encoding/binary"
	"math"
	"testing"

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
	// (session 32: it was taken; see
	// TestAppendPastTheLastOffsetIsRefused).
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
