package log

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReview29CleanOpenRewritesAnUnreadableEndSnapshot: a log closed
// cleanly whose snapshot at the log end went bad (a digit changed: its
// checksum fails) opens cleanly, its producer state rebuilt from an older
// snapshot and the batches after it. That state is written as the
// snapshot at the end, as after any Open that did not load the end's: else
// compaction, free below the end, removes the producer's earlier batches,
// which no readable snapshot holds, and the Open after a crash, skipping
// the bad snapshot again, replays a log that no longer has them, and
// refuses a retry of one of them as out of order instead of answering it
// as a duplicate.
func TestReview29CleanOpenRewritesAnUnreadableEndSnapshot(t *testing.T) {
	e := newEnv(t)
	cfg := Config{Sync: SyncAlways, CleanupPolicy: Compact}
	l := e.open(cfg)
	for seq := range int32(5) {
		appendOK(t, l, keyedProducerBatch(t, seq, "k")) // 0-4, one key
	}
	require.NoError(t, l.Roll())  // a snapshot at 5; the segment of 0-4 sealed
	require.NoError(t, l.Close()) // the snapshot at 5 again, and the marker

	name := filepath.Join(e.dir, snapshotName(5))
	good := string(readWhole(t, e.fs, name))
	bad := strings.Replace(good, "\n1 0 3 3 3 3\n", "\n1 0 3 3 3 4\n", 1)
	require.NotEqual(t, good, bad)
	replaceMemFile(t, e.fs, name, []byte(bad))

	l = e.open(cfg)
	info := l.Recovery()
	require.True(t, info.Clean, "%+v", info)
	require.NotEqualValues(t, 5, info.ProducerSnapshot, "%+v", info)
	requireDuplicate(t, l, keyedProducerBatch(t, 3, "k"), 3)
	res, err := l.Compact(context.Background())
	require.NoError(t, err)
	require.Equal(t, 4, res.RecordsRemoved, "%+v", res) // 0-3 go, the producer's last batch stays

	l = e.crashReopen(l, cfg)
	defer l.Close()
	requireDuplicate(t, l, keyedProducerBatch(t, 3, "k"), 3)
	requireDuplicate(t, l, keyedProducerBatch(t, 4, "k"), 4)
}
