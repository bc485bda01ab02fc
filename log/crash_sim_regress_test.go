package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// Regression tests for what TestCrashSim found, each reduced to a fixed
// sequence.

// TestWaitAfterCloseOfTruncatedAppend: an append that TruncateTo removed
// before its fsync is answered ErrOffsetOutOfRange by its Durability's
// Wait, also once the log is closed (Close fsyncs what the log holds, not
// what it no longer holds): Wait said ErrClosed, which its doc keeps for a
// log closed without fsyncing the append (Discard, a failed Close).
// Found by TestCrashSim (seed 12).
func TestWaitAfterCloseOfTruncatedAppend(t *testing.T) {
	for _, discard := range []bool{false, true} {
		e := newEnv(t)
		l := e.open(Config{Sync: SyncAlways})
		ctx := context.Background()
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
		res, d, err := l.AppendAsync(ctx, valueBatch(t, 1_700_000_000_001, "b", "c"), AppendOptions{})
		require.NoError(t, err)
		_, err = l.TruncateTo(res.FirstOffset)
		require.NoError(t, err)
		if discard {
			require.NoError(t, l.Discard())
		} else {
			require.NoError(t, l.Close())
		}
		require.ErrorIs(t, d.Wait(ctx), ErrOffsetOutOfRange, "discard %v", discard)
	}
}
