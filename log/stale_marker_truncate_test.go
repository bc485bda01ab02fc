package log

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
)

// TestCleanMarkerTimeIndexLostEntryBeforeTheMax: as
// TestCleanMarkerTimeIndexOfAnotherMoment, with the active segment's
// largest timestamp in its last batch, after the offset index's last
// entry: Open finds the max timestamp and its offset that the marker
// recorded, from that batch, though the time index lost the entry of an
// earlier batch (found by TestTimeModel). The segment's later answers
// rest on the entries the time index has at its index points: a
// truncation that cut the last batch took the max timestamp of what was
// left from the batches after the offset index entry below the cut, and
// missed the earlier batch's larger one; OffsetForTime then skipped the
// segment, and retention would have judged it by a timestamp too low.
func TestCleanMarkerTimeIndexLostEntryBeforeTheMax(t *testing.T) {
	const ts int64 = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1} // an index entry a batch
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts, "a"))     // 0
	appendOK(t, l, valueBatch(t, ts+100, "b")) // 1: a time index entry
	appendOK(t, l, valueBatch(t, ts+50, "c"))  // 2
	appendOK(t, l, valueBatch(t, ts+200, "d")) // 3: the largest, another entry
	require.NoError(t, l.Close())
	writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(0, segment.TimeIndexSuffix)), nil)

	l = e.open(cfg)
	defer l.Close()
	require.False(t, l.Recovery().Clean, "the time index is not the one the clean Close left")
	end, err := l.TruncateTo(3)
	require.NoError(t, err)
	require.EqualValues(t, 3, end)
	off, ok, err := l.OffsetForTime(ts + 100)
	require.NoError(t, err)
	require.True(t, ok, "record 1 has timestamp %d", ts+100)
	require.EqualValues(t, 1, off)
	off, ok, err = l.OffsetOfMaxTimestamp(context.Background())
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off)
	segs := *l.segs.Load()
	require.EqualValues(t, ts+100, segs[0].MaxTimestamp())
}

// TestCleanMarkerTimeIndexLostEntryMaxBelow: as
// TestCleanMarkerTimeIndexLostEntryBeforeTheMax, without a truncation:
// the largest timestamp below a high watermark inside the active segment
// (MAX_TIMESTAMP) rests on the time index entries of its index points
// too. With the entry of batch 1 lost, it came out as the first batch's,
// and the answer was record 0, not record 1, the first with the largest
// timestamp below offset 3. The marker's count of time index entries
// tells Open that the time index is not the one Close left.
func TestCleanMarkerTimeIndexLostEntryMaxBelow(t *testing.T) {
	const ts int64 = 1_700_000_000_000
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, IndexIntervalBytes: 1} // an index entry a batch
	l := e.open(cfg)
	appendOK(t, l, valueBatch(t, ts+60, "a"))  // 0
	appendOK(t, l, valueBatch(t, ts+100, "b")) // 1: a time index entry
	appendOK(t, l, valueBatch(t, ts+50, "c"))  // 2
	appendOK(t, l, valueBatch(t, ts+200, "d")) // 3: the largest, another entry
	require.NoError(t, l.Close())
	writeMemFile(t, e.fs, filepath.Join(e.dir, segment.FileName(0, segment.TimeIndexSuffix)), nil)

	l = e.open(cfg)
	defer l.Close()
	require.False(t, l.Recovery().Clean, "the time index is not the one the clean Close left")
	off, ok, err := l.OffsetOfMaxTimestampBelow(context.Background(), 3)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off, "the first record with the largest timestamp below offset 3")
}
