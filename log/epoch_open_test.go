package log

import (
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenDropsEpochsPastTheEnd: epochs that start past the log end go
// at Open, after a clean close as after a crash (as Kafka's log loading
// truncates its epoch cache to the log end offset): before, a clean open
// kept them, and the log answered OffsetForLeaderEpoch with an epoch
// that began at an offset it never wrote.
func TestOpenDropsEpochsPastTheEnd(t *testing.T) {
	for _, clean := range []bool{true, false} {
		e := newEnv(t)
		l := e.open(Config{})
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b"))
		_, err := l.Append(t.Context(), valueBatch(t, 1_700_000_000_000, "c"), AppendOptions{LeaderEpoch: 2})
		require.NoError(t, err)
		require.NoError(t, l.Flush(t.Context()))
		if clean {
			require.NoError(t, l.Close())
		} else {
			e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
			require.NoError(t, l.Discard())
		}
		require.NoError(t, writeCheckpoint(e.fs, e.dir, leaderEpochFile, checkpointV0, [][]int64{{0, 0}, {2, 2}, {5, 3}, {6, 40}}))
		l = e.open(Config{})
		require.Equal(t, []EpochEntry{{0, 0}, {2, 2}}, l.LeaderEpochs(), "clean %v", clean)
		require.NoError(t, l.Close())
		l = e.open(Config{})
		require.Equal(t, []EpochEntry{{0, 0}, {2, 2}}, l.LeaderEpochs(), "clean %v, reopened", clean)
		require.NoError(t, l.Close())
	}
}

// TestOpenRecoversEpochsFromBatches: a crash after an append wrote its
// batch and before it recorded the batch's new leader epoch (appendLocked
// writes the batch, then the epoch checkpoint) left the batch without its
// epoch; Open's recovery takes each batch's epoch into the cache, as
// Kafka's LogSegment.recover does (leaderEpochCache.assign). Before, the
// cache lacked it, and OffsetForLeaderEpoch answered for the older epoch
// up to the log end.
func TestOpenRecoversEpochsFromBatches(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b"))
	_, err := l.Append(t.Context(), valueBatch(t, 1_700_000_000_000, "c"), AppendOptions{LeaderEpoch: 2})
	require.NoError(t, err)
	_, err = l.Append(t.Context(), valueBatch(t, 1_700_000_000_000, "d"), AppendOptions{LeaderEpoch: 5})
	require.NoError(t, err)
	require.NoError(t, l.Flush(t.Context()))
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Discard())
	// The checkpoint as the crash left it: epoch 2's and 5's not written.
	require.NoError(t, writeCheckpoint(e.fs, e.dir, leaderEpochFile, checkpointV0, [][]int64{{0, 0}}))
	l = e.open(Config{})
	require.Equal(t, []EpochEntry{{0, 0}, {2, 2}, {5, 3}}, l.LeaderEpochs())
	ep, end := l.EndOffsetForEpoch(0)
	require.EqualValues(t, 0, ep)
	require.EqualValues(t, 2, end)
	require.NoError(t, l.Close())
	l = e.open(Config{})
	require.Equal(t, []EpochEntry{{0, 0}, {2, 2}, {5, 3}}, l.LeaderEpochs(), "reopened")
	require.NoError(t, l.Close())
}

// TestOpenRecoversEpochsBelowACheckpointedOne: a leader-epoch checkpoint
// with an older epoch that starts past the log end (damaged; found by
// FuzzOpenFile: "0 70" beside a log ending at 48), and recovery assigns
// the batches' newer epoch at a lower offset. Before, assign appended it
// after the checkpoint's, the start offsets no longer grew, and the cut
// to the log end (a binary search over them) kept the epoch past the
// end. Assigned as Kafka's LeaderEpochFileCache.assign does, the entry
// past the batch's start goes: the epoch is the scanned batch's (the
// segments below the recovery point are not scanned, as in Kafka).
func TestOpenRecoversEpochsBelowACheckpointedOne(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 100} // a segment each
	l := e.open(cfg)
	for i, v := range []string{"a", "b", "c"} {
		_, err := l.Append(t.Context(), valueBatch(t, 1_700_000_000_000, v), AppendOptions{LeaderEpoch: int32(1 + i/2*2)})
		require.NoError(t, err)
	}
	require.Equal(t, 3, l.Segments())
	require.NoError(t, l.Flush(t.Context()))
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Discard())
	require.NoError(t, writeCheckpoint(e.fs, e.dir, recoveryPointFile, checkpointV0, [][]int64{{2}}))
	require.NoError(t, writeCheckpoint(e.fs, e.dir, leaderEpochFile, checkpointV0, [][]int64{{0, 70}}))
	l = e.open(cfg)
	require.Equal(t, []EpochEntry{{3, 2}}, l.LeaderEpochs())
	require.NoError(t, l.Close())
	l = e.open(cfg)
	require.Equal(t, []EpochEntry{{3, 2}}, l.LeaderEpochs(), "reopened")
	require.NoError(t, l.Close())
}
