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
