package log

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// recoveryPointOnDisk reads the recovery-point checkpoint as Open would.
func recoveryPointOnDisk(t *testing.T, fsys vfs.FS, dir string) int64 {
	t.Helper()
	rp, err := readOffset(fsys, dir, recoveryPointFile, 0)
	require.NoError(t, err)
	return rp
}

// TestMaintainCheckpointsDurableOffset: Maintain writes the recovery
// point at the durable offset, under every policy, and only that: under
// SyncNever appends past the last Flush are not durable and stay past it.
func TestMaintainCheckpointsDurableOffset(t *testing.T) {
	for _, cfg := range []Config{{Sync: SyncAlways}, {Sync: SyncPeriodic, FlushMessages: 1}, {Sync: SyncNever}} {
		t.Run(cfg.Sync.String(), func(t *testing.T) {
			e := newEnv(t)
			l := e.open(cfg)
			for i := range 5 {
				appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
			}
			if cfg.Sync == SyncNever {
				require.NoError(t, l.Flush(t.Context()))
				appendOK(t, l, valueBatch(t, 1_700_000_000_005, "not synced"))
			}
			require.Equal(t, int64(0), recoveryPointOnDisk(t, e.fs, e.dir), "no roll yet")
			require.NoError(t, l.Maintain(t.Context()))
			require.Equal(t, int64(5), recoveryPointOnDisk(t, e.fs, e.dir))
			// Nothing new: nothing written (the file's content stays).
			require.NoError(t, l.Maintain(t.Context()))
			require.Equal(t, int64(5), recoveryPointOnDisk(t, e.fs, e.dir))
			require.NoError(t, l.Close())
		})
	}
}

// TestCheckpointRecoveryLosesToTruncation: a truncation below the offset a
// checkpoint chose, between that choice and its write, wins: the
// checkpoint left on disk is never past the log end, where Open would
// take a torn tail of new, unsynced appends for durable offsets gone bad
// and refuse the log.
func TestCheckpointRecoveryLosesToTruncation(t *testing.T) {
	mem := vfs.NewMem()
	e := newEnv(t)
	e.fs = mem
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for i := range 10 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	testHookCheckpointChosen = func(hl *Log) {
		testHookCheckpointChosen = nil
		_, err := hl.TruncateTo(5)
		require.NoError(t, err)
	}
	defer func() { testHookCheckpointChosen = nil }()
	require.NoError(t, l.Maintain(t.Context()))
	require.LessOrEqual(t, recoveryPointOnDisk(t, mem, e.dir), int64(5))

	// New appends past the cut, never synced, torn by a power loss.
	for i := range 20 {
		_, _, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_100+int64(i), strings.Repeat("x", 300)), AppendOptions{})
		require.NoError(t, err)
	}
	for seed := range 20 {
		clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailTorn, Reorder: true, Rand: rand.New(rand.NewPCG(uint64(seed), 7))})
		l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
		require.NoError(t, err, "seed %d", seed)
		require.GreaterOrEqual(t, l2.LogEndOffset(), int64(5))
		require.NoError(t, l2.Close())
	}
	require.NoError(t, l.Close())
}

// TestCheckpointRecoveryAfterDiscard: a log discarded (its topic deleted)
// between the checkpoint's choice and its write is not written to.
func TestCheckpointRecoveryAfterDiscard(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways})
	for i := range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	testHookCheckpointChosen = func(hl *Log) {
		testHookCheckpointChosen = nil
		require.NoError(t, hl.Discard())
	}
	defer func() { testHookCheckpointChosen = nil }()
	require.NoError(t, l.Maintain(t.Context()))
	require.Equal(t, int64(0), recoveryPointOnDisk(t, e.fs, e.dir))
}

// TestCheckpointRecoveryConcurrent runs Maintain's checkpoint against
// appends, rolls and truncations (for -race), and checks after each round
// that the checkpoint on disk is never past the log end.
func TestCheckpointRecoveryConcurrent(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways, SegmentBytes: 4096})
	ctx := t.Context()
	var ts int64 = 1_700_000_000_000
	for round := range 30 {
		var wg sync.WaitGroup
		wg.Add(3)
		go func() {
			defer wg.Done()
			for i := range 20 {
				_, err := l.Append(ctx, valueBatch(t, ts+int64(round*100+i), fmt.Sprint(i)), AppendOptions{})
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue // truncated before its fsync, as Append says
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 5 {
				if err := l.Maintain(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			if round%3 == 0 {
				if _, err := l.TruncateTo(max(l.LogStartOffset(), l.LogEndOffset()-7)); err != nil {
					t.Error(err)
				}
			}
		}()
		wg.Wait()
		require.LessOrEqual(t, recoveryPointOnDisk(t, e.fs, e.dir), l.LogEndOffset(), "round %d", round)
	}
	require.NoError(t, l.Close())
}

// TestCheckpointRecoveryLosesToRollAndClose: a roll of a syncing log, or a
// Close, between the checkpoint's choice and its write writes a higher
// recovery point (the new segment's base; the log end offset, with the
// clean-shutdown marker): the checkpoint's lower one must not overwrite
// it. A Close overwritten so would leave a clean log whose recorded end
// (the recovery point) is not its end: Open would refuse it.
func TestCheckpointRecoveryLosesToRollAndClose(t *testing.T) {
	for _, tc := range []struct {
		name string
		act  func(t *testing.T, l *Log)
	}{
		{"roll", func(t *testing.T, l *Log) {
			appendOK(t, l, valueBatch(t, 1_700_000_000_100, "after the choice"))
			require.NoError(t, l.Roll())
		}},
		{"close", func(t *testing.T, l *Log) {
			_, _, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_100, "after the choice"), AppendOptions{})
			require.NoError(t, err)
			require.NoError(t, l.Close())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{Sync: SyncAlways}
			l := e.open(cfg)
			for i := range 3 {
				appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
			}
			testHookCheckpointChosen = func(hl *Log) {
				testHookCheckpointChosen = nil
				tc.act(t, hl)
			}
			defer func() { testHookCheckpointChosen = nil }()
			require.NoError(t, l.Maintain(t.Context()))
			require.Equal(t, int64(4), recoveryPointOnDisk(t, e.fs, e.dir))
			require.NoError(t, l.Close())
			l2 := e.open(cfg)
			require.Equal(t, int64(4), l2.LogEndOffset())
			require.NoError(t, l2.Close())
		})
	}
}

// TestWaitAfterTruncationAndReuse: an append removed by TruncateTo before
// its fsync, whose offsets later appends took, is not acknowledged by the
// fsync of those (its Wait returned nil: from a review). An append
// fsynced before the truncation stays acknowledged.
func TestWaitAfterTruncationAndReuse(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways})
	ctx := t.Context()
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
	appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b"))
	synced, err := l.Append(ctx, valueBatch(t, 1_700_000_000_002, "c"), AppendOptions{})
	require.NoError(t, err)
	_, dSynced, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_002, "c"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, dSynced.Wait(ctx))

	_, lost, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_003, "lost"), AppendOptions{})
	require.NoError(t, err)
	// Cuts the second "c" (fsynced before) and the lost append.
	_, err = l.TruncateTo(synced.FirstOffset + 1)
	require.NoError(t, err)
	_, again, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_004, "again"), AppendOptions{})
	require.NoError(t, err)
	_, more, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_005, "more"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Flush(ctx))

	require.NoError(t, again.Wait(ctx))
	require.NoError(t, more.Wait(ctx))
	require.ErrorIs(t, lost.Wait(ctx), ErrOffsetOutOfRange, "the lost append's offsets are durable, but hold other records")
	// Fsynced before the truncation (which then cut it): acknowledged.
	require.NoError(t, dSynced.Wait(ctx))
	require.NoError(t, l.Close())
}

// TestMaintainCheckpointsWhenCompactionFails: the recovery point moves
// even when an earlier step of Maintain fails (here compaction, with its
// ctx ended): a compaction that failed at every pass kept it where it was
// (from a review).
func TestMaintainCheckpointsWhenCompactionFails(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways, CleanupPolicy: Compact, MinCleanableDirtyRatio: 0.01})
	for i := range 6 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
		require.NoError(t, l.Roll())
	}
	appendOK(t, l, valueBatch(t, 1_700_000_000_006, "v")) // past the last roll's recovery point
	require.Equal(t, int64(6), recoveryPointOnDisk(t, e.fs, e.dir))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, l.Maintain(ctx), context.Canceled)
	require.Equal(t, int64(7), recoveryPointOnDisk(t, e.fs, e.dir))
	require.NoError(t, l.Close())
}

// TestMaintainWithEndedCtx: a Maintain whose ctx ended before the call
// skips its work (here retention) and returns ctx's error, as the
// broker's Maintain; it did all its work and returned nil. (It still
// checkpoints: TestMaintainCheckpointsWhenCompactionFails.)
func TestMaintainWithEndedCtx(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways, SegmentBytes: 200, RetentionTime: time.Hour})
	for i := range 10 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	require.Greater(t, l.Segments(), 2)
	e.clock.Advance(2 * time.Hour) // every record past retention.ms
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, l.Maintain(ended), context.Canceled)
	require.Zero(t, l.LogStartOffset(), "retention ran")
	require.NoError(t, l.Maintain(t.Context()))
	require.Positive(t, l.LogStartOffset())
}
