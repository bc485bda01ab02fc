package log

// Review45mut: a mutation pass over the log's code changed by the review
// rounds of 2026-12-04 (the snapshots' prune, the roll's forgetting of
// creation times). Each test names the mutant it kills.

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSnapshotAlreadyGoneIsForgotten: a producer-state
// snapshot whose file is gone already (removed by hand, or by a removal
// whose answer was lost) when the prune removes it is forgotten, as one
// removed: only a removal that fails otherwise keeps it listed, to be
// tried again. Kills: the prune taking a file not found for a failed
// removal (s11: kept listed, and a Warn at every prune).
func TestSnapshotAlreadyGoneIsForgotten(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{SegmentBytes: 400, Sync: SyncNever})
	defer func() { l.Close() }()
	for i := range 30 {
		appendOK(t, l, keyedProducerBatch(t, int32(i), "k"))
	}
	l.mu.Lock()
	require.NotEmpty(t, l.snapshots)
	gone := l.snapshots[0]
	l.unlock()
	require.NoError(t, e.fs.Remove(filepath.Join(e.dir, snapshotName(gone))))
	_, err := l.DeleteRecordsBefore(context.Background(), l.LogEndOffset())
	require.NoError(t, err)
	l.mu.Lock()
	snaps := slices.Clone(l.snapshots)
	l.unlock()
	require.NotContains(t, snaps, gone, "a snapshot gone already is forgotten")
}
