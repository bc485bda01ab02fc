package log

import (
	"context"
	"runtime"
	"testing"
	"weak"

	"github.com/stretchr/testify/require"
)

// TestTruncationRecordsAreBounded: Durability.Wait needs, for every
// truncation since its append, the offset above which that truncation
// lost unsynced appends (8bc17df, 5e6ba2d). The log kept one such record
// per truncation for its whole life: a follower truncated a million times
// held a million of them, whether or not any Durability of an append
// before them was still held (200 here). Now a record lives as long as a
// Durability that may need it: once none is held, they are garbage; one
// held keeps those since its append, and Wait answers as before.
func TestTruncationRecordsAreBounded(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{Sync: SyncAlways})
	defer l.Close()
	ctx := context.Background()
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a")) // 0, synced

	// An append kept by a truncation, and one lost to it (its offsets
	// appended again and synced), both waited for after every truncation
	// below.
	kept, keptD, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_000, "kept"), AppendOptions{}) // 1
	require.NoError(t, err)
	lost, lostD, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_000, "lost", "too"), AppendOptions{}) // 2-3
	require.NoError(t, err)
	_, err = l.TruncateTo(lost.FirstOffset)
	require.NoError(t, err)

	// Truncations whose Durabilities are dropped: their records stay as
	// long as keptD and lostD, from before them, are held.
	eras := append(truncateRepeatedly(t, l, 200), weak.Make(keptD.era))
	runtime.GC()
	for i, w := range eras {
		require.NotNil(t, w.Value(), "the record of truncation era %d is gone, a Durability held needs it", i)
	}
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "x", "y", "z")) // 2-4: the lost offsets, synced
	require.NoError(t, keptD.Wait(ctx), "offset %d was never truncated", kept.FirstOffset)
	require.ErrorIs(t, lostD.Wait(ctx), ErrOffsetOutOfRange)

	// Once no Durability from before them is held, the log holds none.
	keptD, lostD = Durability{}, Durability{}
	runtime.GC()
	for i, w := range eras {
		require.Nil(t, w.Value(), "the record of truncation era %d is still held", i)
	}
	l.mu.Lock()
	require.Nil(t, l.era.next, "the log holds the current era alone")
	l.mu.Unlock()
	runtime.KeepAlive(keptD)
	runtime.KeepAlive(lostD)
}

// truncateRepeatedly appends to l and truncates the append away n times,
// without waiting for the appends, and returns weak pointers to the
// truncation eras of their Durabilities, which it drops.
func truncateRepeatedly(t *testing.T, l *Log, n int) []weak.Pointer[truncationEra] {
	t.Helper()
	var eras []weak.Pointer[truncationEra]
	for range n {
		res, d, err := l.AppendAsync(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		require.NoError(t, err)
		require.NotNil(t, d.era)
		eras = append(eras, weak.Make(d.era))
		_, err = l.TruncateTo(res.FirstOffset)
		require.NoError(t, err)
	}
	return eras
}
