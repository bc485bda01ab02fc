package runneltest_test

import (
	"context"
	"testing"

	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A zero Rule (one not made by Faults.Add) is a removed rule that never
// applied: its Hits, Remove and Wait panicked on its nil Faults.
func TestZeroRule(t *testing.T) {
	var r runneltest.Rule
	require.NotPanics(t, func() {
		require.Zero(t, r.Hits())
		r.Remove()
		r.Remove()
		require.NoError(t, r.Wait(context.Background(), 0))
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		require.ErrorIs(t, r.Wait(ctx, 1), context.Canceled)
		// 0 hits are reached already, whatever ctx: as an added rule's
		// Wait(ctx, 0), nil
		require.NoError(t, r.Wait(ctx, 0))
	})
}
