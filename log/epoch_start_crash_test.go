package log

import (
	"context"
	"strings"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenDropsEpochsBelowTheStart: a crash after DeleteRecordsBefore
// wrote the log start offset and before the leader-epoch checkpoint
// followed leaves epochs below the start on disk; Open drops them (the
// first kept one starting at the log start), as Kafka's log loading
// truncates its epoch cache from the log start offset ("the earliest
// leader epoch may not be flushed during a hard failure"). Before, the
// reopened log kept them, and answered OffsetForLeaderEpoch for an epoch
// whose records were all deleted with an end offset below its start.
func TestOpenDropsEpochsBelowTheStart(t *testing.T) {
	mem := vfs.NewMem()
	var crashed *vfs.MemFS
	armed := false
	fs := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed && crashed == nil && strings.Contains(name, leaderEpochFile) {
			crashed = mem.CrashClone(vfs.CrashOptions{})
		}
		return nil
	}))
	dir := "/data/topic-0"
	l, err := Open(dir, Config{}, Options{FS: fs, Clock: newClock()})
	require.NoError(t, err)
	for epoch, values := range [][]string{{"a", "b"}, {"c", "d"}, {"e", "f"}} {
		_, err := l.Append(t.Context(), valueBatch(t, 1_700_000_000_000, values...), AppendOptions{LeaderEpoch: int32(epoch)})
		require.NoError(t, err)
	}
	require.NoError(t, l.Flush(t.Context()))
	require.Equal(t, []EpochEntry{{0, 0}, {1, 2}, {2, 4}}, l.LeaderEpochs())
	armed = true
	_, err = l.DeleteRecordsBefore(context.Background(), 5)
	require.NoError(t, err)
	require.NotNil(t, crashed, "the epoch checkpoint was not written")
	want := []EpochEntry{{2, 5}}
	require.Equal(t, want, l.LeaderEpochs())
	require.NoError(t, l.Discard())

	l, err = Open(dir, Config{}, Options{FS: crashed, Clock: newClock()})
	require.NoError(t, err)
	require.Equal(t, int64(5), l.LogStartOffset())
	require.Equal(t, want, l.LeaderEpochs())
	// As Kafka answers an epoch below the earliest it has: that epoch,
	// ending at the log start (the dropped entries answered 4, below it).
	epoch, end := l.EndOffsetForEpoch(1)
	require.Equal(t, int32(1), epoch)
	require.Equal(t, int64(5), end, "an epoch whose records were all deleted")
	require.NoError(t, l.Close())
	l, err = Open(dir, Config{}, Options{FS: crashed, Clock: newClock()})
	require.NoError(t, err)
	require.Equal(t, want, l.LeaderEpochs(), "reopened")
	require.NoError(t, l.Close())
}
