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
	e, cfg, full := cleanerCheckpointFails(t, vfs.OpCreate)
	l := e.open(cfg)
	defer func() { l.Close() }()
	appendCompactable(t, l)

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

// TestCompactionCheckpointRenameFailureFences: a cleaner checkpoint whose
// temporary file was written but could not be renamed into place is not
// the "no room for it" case (TestCompactionCheckpointNotWrittenFencesNothing),
// which alone leaves the log unfenced: the pass fails with ErrLogFenced
// and the log refuses appends until it is opened again, which serves
// what the pass swapped in.
func TestCompactionCheckpointRenameFailureFences(t *testing.T) {
	ctx := context.Background()
	e, cfg, failing := cleanerCheckpointFails(t, vfs.OpRename)
	l := e.open(cfg)
	defer func() { l.Close() }()
	appendCompactable(t, l)

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

// cleanerCheckpointFails returns an env whose file system fails op on
// the cleaner checkpoint's temporary file while the flag returned is
// set, and the config of a compacted log of small segments.
func cleanerCheckpointFails(t *testing.T, op vfs.Op) (*env, Config, *atomic.Bool) {
	e := newEnv(t)
	var on atomic.Bool
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(o vfs.Op, name string) error {
		if on.Load() && o == op && strings.HasSuffix(name, cleanerFile+tmpSuffix) {
			return fmt.Errorf("%w: %v", vfs.ErrInjected, op)
		}
		return nil
	}))
	return e, Config{SegmentBytes: 200, CleanupPolicy: Compact}, &on
}

// appendCompactable appends 12 batches of 3 keys in turn and rolls: a
// pass has segments to rewrite, 3 records left.
func appendCompactable(t *testing.T, l *Log) {
	t.Helper()
	for i := range 12 {
		appendOK(t, l, keyedBatch(t, fmt.Sprint("k", i%3)))
	}
	require.NoError(t, l.Roll())
}
