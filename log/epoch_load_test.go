package log

import (
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestLoadEpochsNonMonotonic: a leader-epoch checkpoint whose entries do
// not grow (found by FuzzOpenFile: "3 40" then "1 7") is read as Kafka's
// LeaderEpochFileCache reads it, each entry assigned in turn: a later
// entry removes the earlier ones whose epoch or start offset is not
// below its own, and an entry of the latest epoch at a larger start
// offset is not needed. The epochs the log then answers with grow.
func TestLoadEpochsNonMonotonic(t *testing.T) {
	for _, tc := range []struct {
		rows [][]int64
		want []EpochEntry
	}{
		{[][]int64{{3, 40}, {1, 7}}, []EpochEntry{{1, 7}}},
		{[][]int64{{1, 0}, {2, 5}, {4, 9}, {3, 7}}, []EpochEntry{{1, 0}, {2, 5}, {3, 7}}},
		{[][]int64{{1, 0}, {2, 5}, {5, 5}}, []EpochEntry{{1, 0}, {5, 5}}},
		{[][]int64{{1, 0}, {2, 5}, {2, 8}}, []EpochEntry{{1, 0}, {2, 5}}},
		{[][]int64{{1, 0}, {2, 5}, {2, 3}}, []EpochEntry{{1, 0}, {2, 3}}},
		{[][]int64{{0, 0}, {1, 4}}, []EpochEntry{{0, 0}, {1, 4}}},
	} {
		fs := vfs.NewMem()
		require.NoError(t, fs.MkdirAll("/d", 0o755))
		require.NoError(t, writeCheckpoint(fs, "/d", leaderEpochFile, checkpointV0, tc.rows))
		c, err := loadEpochs(fs, "/d")
		require.NoError(t, err, "%v", tc.rows)
		require.Equal(t, tc.want, c.entries, "%v", tc.rows)
	}
}

// TestLoadEpochsOutOfRange: an entry with a negative start offset, or an
// epoch that does not fit 32 bits, makes the checkpoint malformed (Kafka's
// cache refuses such an entry too).
func TestLoadEpochsOutOfRange(t *testing.T) {
	for _, rows := range [][][]int64{{{1, -5}}, {{1 << 31, 0}}, {{-1<<31 - 1, 0}}, {{-1, -1}}, {{1, 0}, {2, -1}}} {
		fs := vfs.NewMem()
		require.NoError(t, fs.MkdirAll("/d", 0o755))
		require.NoError(t, writeCheckpoint(fs, "/d", leaderEpochFile, checkpointV0, rows))
		_, err := loadEpochs(fs, "/d")
		require.ErrorIs(t, err, ErrBadCheckpoint, "%v", rows)
	}
}

// TestLoadEpochsNegativeEpochSkipped: an entry with a negative epoch,
// which a runnel before 47bb5d7 recorded for an append with a negative
// LeaderEpoch (and could not then read), is none: it is skipped, and the
// entries after it kept.
func TestLoadEpochsNegativeEpochSkipped(t *testing.T) {
	for _, tc := range []struct {
		rows [][]int64
		want []EpochEntry
	}{
		{[][]int64{{-1, 0}}, nil},
		{[][]int64{{-1, 0}, {3, 5}}, []EpochEntry{{Epoch: 3, StartOffset: 5}}},
		{[][]int64{{-5, 0}, {-1, 2}, {0, 4}}, []EpochEntry{{Epoch: 0, StartOffset: 4}}},
		{[][]int64{{-1 << 31, 0}}, nil},
	} {
		fs := vfs.NewMem()
		require.NoError(t, fs.MkdirAll("/d", 0o755))
		require.NoError(t, writeCheckpoint(fs, "/d", leaderEpochFile, checkpointV0, tc.rows))
		c, err := loadEpochs(fs, "/d")
		require.NoError(t, err, "%v", tc.rows)
		require.Equal(t, tc.want, c.entries, "%v", tc.rows)
	}
}
