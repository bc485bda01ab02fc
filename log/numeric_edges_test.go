package log

import (
	"context"
	"math"
	"testing"

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
