package log

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestCompactionCheckpointRenameFailureFences: a cleaner checkpoint whose
// temporary file was written but could not be renamed into place is not
// the "no room for it" case (TestCompactionCheckpointNotWrittenFencesNothing),
// which alone leaves the log unfenced: the pass fails with ErrLogFenced
// and the log refuses appends until it is opened again, which serves
// what the pass swapped in.
func TestCompactionCheckpointRenameFailureFences(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var failing atomic.Bool
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if failing.Load() && op == vfs.OpRename && strings.HasSuffix(name, cleanerFile+tmpSuffix) {
			return fmt.Errorf("%w: rename", vfs.ErrInjected)
		}
		return nil
	}))
	cfg := Config{SegmentBytes: 200, CleanupPolicy: Compact}
	l := e.open(cfg)
	defer func() { l.Close() }()
	for i := range 12 {
		appendOK(t, l, keyedBatch(t, fmt.Sprint("k", i%3)))
	}
	require.NoError(t, l.Roll())

	failing.Store(true)
	res, err := l.Compact(ctx)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.ErrorIs(t, err, ErrLogFenced)
	require.Positive(t, res.SegmentsRewritten, "the pass swapped its segments in")
	failing.Store(false)
	_, err = l.Append(ctx, keyedBatch(t, "k0"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced)

	require.NoError(t, l.Discard())
	l = e.open(cfg)
	got, _ := latestByKey(t, l)
	require.Len(t, got, 3)
}
