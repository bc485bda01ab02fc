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

// TestCompactionCheckpointNotWrittenFencesNothing: a compaction pass
// whose cleaned segments are swapped in, but whose cleaner checkpoint
// finds no room (the disk filled meanwhile: its temporary file cannot be
// created), fails with the file system's error and fences nothing, as
// docs/details.md ("A full disk") says a compaction pass does. It fenced
// the log, which then refused every append until it was opened again,
// though the checkpoint only says where the next pass's key map begins:
// one left lower on disk makes a pass after a reopen map more, nothing
// else. The next pass, the room back, writes it.
func TestCompactionCheckpointNotWrittenFencesNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	var full atomic.Bool
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if full.Load() && op == vfs.OpCreate && strings.HasSuffix(name, cleanerFile+tmpSuffix) {
			return fmt.Errorf("%w: no space left", vfs.ErrInjected)
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

	full.Store(true)
	res, err := l.Compact(ctx)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.NotErrorIs(t, err, ErrLogFenced)
	require.Positive(t, res.SegmentsRewritten, "the pass swapped its segments in")
	full.Store(false)

	appendOK(t, l, keyedBatch(t, "k0")) // not fenced
	got, _ := latestByKey(t, l)
	require.Len(t, got, 3)
	cp, err := readOffset(e.fs, e.dir, cleanerFile, 0)
	require.NoError(t, err)
	require.Zero(t, cp, "the checkpoint could not be written")

	require.NoError(t, l.Roll())
	res, err = l.Compact(ctx)
	require.NoError(t, err)
	cp, err = readOffset(e.fs, e.dir, cleanerFile, 0)
	require.NoError(t, err)
	require.Equal(t, res.CleanedTo, cp)
	require.Positive(t, cp)
	require.NoError(t, l.Close())
	l = e.open(cfg)
	got2, _ := latestByKey(t, l)
	require.Equal(t, got, got2)
}
