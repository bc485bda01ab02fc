package log

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// Regression tests for what TestCrashSimTransientFaults found once it
// reopened failed logs in the same boot, each reduced to a fixed
// sequence.

// TestTruncateWhoseSyncFailsThenReopen: a truncation whose fsync fails
// fences the log; opened again in the same boot, it goes on, and what it
// acknowledges then is durable. The segment cut had lost its truncation
// to the failed fsync (vfs.WithFaults), and the Open's rewrite, from the
// durable offset, past the new end, cuts it again at its end; the model
// of a failed fsync took only a cut to empty for the end of the failure,
// and every later fsync of the segment changed nothing a power cut keeps:
// "four" was lost, and "three", truncated, came back. Found by
// TestCrashSimTransientFaults (seeds 220, 638, 3339, 3576, 3822; fixed in
// package vfs).
func TestTruncateWhoseSyncFailsThenReopen(t *testing.T) {
	ctx := context.Background()
	e, mem, armed, l := syncFailLog(t, Config{}, nil)
	appendOK(t, l, valueBatch(t, 2, "two"))
	three := appendOK(t, l, valueBatch(t, 3, "three"))
	armed.Store(true)
	_, err := l.TruncateTo(three.FirstOffset)
	require.ErrorIs(t, err, ErrLogFenced)
	require.NoError(t, l.Close())

	l = e.open(Config{})
	require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)))
	_, err = l.Append(ctx, valueBatch(t, 4, "four"), AppendOptions{})
	require.NoError(t, err, "synced: acknowledged")
	e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two", "four")
	require.NoError(t, l.Close())
}

// TestRewriteWhoseSyncFailsAfterRestore: an Open that puts a tail copy
// back (synced) and whose rewrite's fsync then fails leaves the segment
// cut below what was synced and not durable; the next Open, in the same
// boot, puts the copy back and rewrites it again, and the records
// acknowledged after it are durable. They were lost to the power cut
// after (the segment never durable again, see
// TestTruncateWhoseSyncFailsThenReopen). Found by
// TestCrashSimTransientFaults (seed 3765; fixed in package vfs).
func TestRewriteWhoseSyncFailsAfterRestore(t *testing.T) {
	ctx := context.Background()
	// "one" durable, "two" not: the Close's fsync fails.
	e, mem, armed, l := syncFailLog(t, Config{Sync: SyncNever}, nil)
	require.NoError(t, l.Flush(ctx))
	appendOK(t, l, valueBatch(t, 2, "two"))
	armed.Store(true)
	require.ErrorIs(t, l.Close(), vfs.ErrInjected)

	e.openFailingLogWrite(mem, "the rewrite's write: the tail copy stays")

	var syncs atomic.Int32
	secondSyncFails := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && syncs.Add(1) == 2 {
			return vfs.ErrInjected // the copy put back and synced, the rewrite's fsync fails
		}
		return nil
	}))
	_, err := Open(e.dir, Config{}, Options{FS: secondSyncFails, Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected)
	require.EqualValues(t, 2, syncs.Load())

	l = e.open(Config{})
	require.Equal(t, []string{"one", "two"}, values(readAll(t, l, 0)))
	require.Positive(t, l.Recovery().RewrittenBytes)
	_, err = l.Append(ctx, valueBatch(t, 3, "three"), AppendOptions{})
	require.NoError(t, err, "synced: acknowledged")
	e.requireCrashKeeps(mem, vfs.TailDrop, "one", "two", "three")
	require.NoError(t, l.Close())
}

// TestIndexWhoseSyncFailsThenReopen: a roll whose fsync of the sealed
// segment's index fails fences the log; opened again in the same boot,
// the log rebuilds that segment's indexes (it lies at the recovery point)
// and syncs them, and they must be durable once the recovery point passes
// them, since Open after a power cut trusts them there. The rebuild
// zeroed the index file in place and wrote the entries over it: over
// pages the failed fsync may have left clean, never written (on ext4,
// blocks its writeback allocated left flagged unwritten, which read as
// zeros after a power cut): the power cut after found the index without
// its entries, and a read by time answered from the next segment. Found
// by TestCrashSimTransientFaults (seed 200443: OffsetForTime wrong after
// the crash); fixed in package index (a truncation cuts an active index's
// file instead of zeroing it).
func TestIndexWhoseSyncFailsThenReopen(t *testing.T) {
	for _, suffix := range []string{segment.IndexSuffix, segment.TimeIndexSuffix} {
		t.Run(suffix, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMem()
			var armed atomic.Bool
			e := newEnv(t)
			e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpSync && strings.HasSuffix(name, suffix) && armed.CompareAndSwap(true, false) {
					return vfs.ErrInjected
				}
				return nil
			}))
			cfg := Config{IndexIntervalBytes: 1}
			l := e.open(cfg)
			const t0 = 1_700_000_000_000
			appendOK(t, l, valueBatch(t, t0, "a"))
			appendOK(t, l, valueBatch(t, t0+10, "b"))
			armed.Store(true)
			require.ErrorIs(t, l.Roll(), ErrLogFenced, "the sealed segment's index fsync fails")
			require.NoError(t, l.Close())

			l = e.open(cfg)
			appendOK(t, l, valueBatch(t, t0+20, "c"))
			require.NoError(t, l.Roll())
			appendOK(t, l, valueBatch(t, t0+30, "d"))
			require.NoError(t, l.Maintain(ctx)) // the recovery point passes segment 0
			rp, err := readOffset(mem, e.dir, recoveryPointFile, 0)
			require.NoError(t, err)
			require.EqualValues(t, 4, rp)

			crashed := mem.CrashClone(vfs.CrashOptions{})
			for _, sfx := range []string{segment.IndexSuffix, segment.TimeIndexSuffix} {
				name := filepath.Join(e.dir, segment.FileName(0, sfx))
				want, err := readMemFile(mem, name)
				require.NoError(t, err)
				got, err := readMemFile(crashed, name)
				require.NoError(t, err)
				require.NotEmpty(t, want)
				require.Equal(t, want, got, "%s durable", name)
			}
			require.NoError(t, l.Close())
		})
	}
}

// TestEmptyToStartAfterFailedTruncation: a truncation into a batch that
// begins below the log start offset fails after cutting the segment
// (unsynced) and fences the log; an Open in the same boot finds the log
// end below the log start and empties the log (emptyToStart), and fails
// part way; then the power goes. The log must be either as it was, with
// the producer-state snapshot that holds its producers, or emptied at its
// start. Open removed the snapshots (and the leader epochs) durably
// first, then the segments, whose end below the start was in the page
// cache only: after the power cut the segment was back, whole, its
// snapshots gone, and an idempotent producer's batch kept in the state
// past the log start was forgotten (its retry appended again). Now
// emptyToStart cuts the segments to nothing and syncs them first. Found
// by TestCrashSimTransientFaults (seed 4649, with a compacted-away batch).
func TestEmptyToStartAfterFailedTruncation(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	e := newEnv(t)
	seg0 := segment.FileName(2, "") // the segment of offsets 2-4
	var cut, failIndex, failRemove atomic.Bool
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		switch {
		case op == vfs.OpTruncate && strings.HasSuffix(name, seg0+segment.LogSuffix) && failIndex.Load():
			cut.Store(true)
		case cut.Load() && strings.Contains(name, seg0) && strings.Contains(name, "index") && (op == vfs.OpWrite || op == vfs.OpTruncate) && failIndex.CompareAndSwap(true, false):
			return vfs.ErrInjected // the truncation of the indexes, after the segment's
		case op == vfs.OpRemove && strings.HasSuffix(name, seg0+segment.LogSuffix) && failRemove.CompareAndSwap(true, false):
			return vfs.ErrInjected
		}
		return nil
	}))
	l := e.open(Config{})
	appendOK(t, l, idemBatch(t, 1, 0, 0, 2))                        // 0-1
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "c", "d", "e")) // 2-4
	require.NoError(t, l.Roll())                                    // the snapshot at 5 holds producer 1's batch
	start, err := l.DeleteRecordsBefore(context.Background(), 3)
	require.NoError(t, err)
	require.EqualValues(t, 3, start)
	failIndex.Store(true)
	_, err = l.TruncateTo(3) // the batch holding 3 begins at 2: the log would start at 2 = its end
	require.ErrorIs(t, err, ErrLogFenced)
	require.True(t, cut.Load())
	require.NoError(t, l.Close())

	failRemove.Store(true)
	_, err = Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	require.ErrorIs(t, err, vfs.ErrInjected, "emptying the log fails part way")
	require.False(t, failRemove.Load())

	l2, err := Open(e.dir, Config{}, Options{FS: mem.CrashClone(vfs.CrashOptions{}), Clock: e.clock})
	require.NoError(t, err)
	defer l2.Close()
	// The segments were cut to nothing, durably, before the snapshots
	// went: the power cut leaves the log to empty again, at its start.
	// (Before, the cut was the truncation's, unsynced: the log was back at
	// its end 5 without the snapshot at 5, and producer 1's retry was
	// appended again.)
	require.EqualValues(t, 3, l2.LogStartOffset())
	require.EqualValues(t, 3, l2.LogEndOffset(), "emptied at its start: %+v", l2.Recovery())
	res, err := l2.Append(ctx, valueBatch(t, 1_700_000_000_001, "f"), AppendOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 3, res.FirstOffset)
}
