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
