package log

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// review40ProducerLog opens, on fs, a log that holds producer 1's batches
// of one record at sequences 0..5 (offsets 0..5), rolled at 3 under
// SyncAlways, so that a producer-state snapshot at 3 is on disk.
func review40ProducerLog(t *testing.T, e *env) *Log {
	t.Helper()
	l, err := Open(e.dir, Config{Sync: SyncAlways, RetentionTime: -1}, Options{FS: e.fs, Clock: e.clock, ProducerExpiration: time.Hour})
	require.NoError(t, err)
	for seq := range int32(6) {
		appendOK(t, l, keyedProducerBatch(t, seq, "k"))
		if seq == 2 {
			require.NoError(t, l.Roll())
		}
	}
	require.Contains(t, l.snapshots, int64(3))
	return l
}

// TestReview40TruncateReloadUnreadableSnapshot: the truncation reloads
// the producer state from the newest snapshot at or below its end; one
// that does not parse is skipped (logged), and the state keeps what it
// remembered below the end: the producer's next sequence follows the last
// batch kept, and a retry of a kept batch is a duplicate.
func TestReview40TruncateReloadUnreadableSnapshot(t *testing.T) {
	e := newEnv(t)
	l := review40ProducerLog(t, e)
	defer l.Close()
	f, err := e.fs.Create(filepath.Join(e.dir, snapshotName(3)))
	require.NoError(t, err)
	_, err = f.Write([]byte("not a snapshot\n"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	end, err := l.TruncateTo(5)
	require.NoError(t, err)
	require.EqualValues(t, 5, end)
	requireDuplicate(t, l, keyedProducerBatch(t, 4, "k"), 4)
	res := appendOK(t, l, keyedProducerBatch(t, 5, "k"))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 5, res.FirstOffset)
}

// TestReview40TruncateReloadReplayFails: the replay of the batches from
// the snapshot to the new end that fails on a read fences the log (the
// state cannot be trusted), and the reopened log has what the truncation
// kept, its producer taking the next sequence after it.
func TestReview40TruncateReloadReplayFails(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	seg3 := segment.FileName(3, segment.LogSuffix)
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRead && on.Load() && strings.HasSuffix(name, seg3) {
			n.Add(1)
			return vfs.ErrInjected
		}
		return nil
	}))
	l := review40ProducerLog(t, e)
	testHookTruncateStores = func(*Log) { on.Store(true) }
	t.Cleanup(func() { testHookTruncateStores = nil })
	_, err := l.TruncateTo(5)
	testHookTruncateStores = nil
	on.Store(false)
	require.ErrorIs(t, err, ErrLogFenced)
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.Positive(t, n.Load())
	l.Close()

	l = e.open(Config{Sync: SyncAlways, RetentionTime: -1})
	defer l.Close()
	require.EqualValues(t, 5, l.LogEndOffset())
	requireDuplicate(t, l, keyedProducerBatch(t, 4, "k"), 4)
	res := appendOK(t, l, keyedProducerBatch(t, 5, "k"))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 5, res.FirstOffset)
}

// TestReview40TruncateReloadKeepsExpired: a producer that expired
// (Maintain) before a truncation is not brought back by the reload, though
// the replay from the snapshot finds its batches: the state holds only
// the producers the log knew before.
func TestReview40TruncateReloadKeepsExpired(t *testing.T) {
	e := newEnv(t)
	l := review40ProducerLog(t, e)
	defer l.Close()
	e.clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(context.Background()))
	require.Empty(t, l.producers)

	_, err := l.TruncateTo(5)
	require.NoError(t, err)
	require.Empty(t, l.producers)
}
