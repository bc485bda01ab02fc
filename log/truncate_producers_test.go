package log

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestTruncateToReloadsTheProducerState: a truncation rebuilds the
// idempotent producers' state as of its new end, as Kafka's
// truncateAndReload does (the newest snapshot at or below it, and the
// batches after), instead of only dropping the removed batches from the
// last five each producer had: a producer whose remembered batches all
// went was forgotten though its older batches stayed, so that a zombie of
// an older epoch was taken for a new producer, and the producer's own
// next batch was then refused as out of order.
func TestTruncateToReloadsTheProducerState(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncAlways, SyncNever} {
		e := newEnv(t)
		cfg := Config{Sync: sync}
		l := e.open(cfg)
		ctx := context.Background()
		for seq := range int32(7) {
			appendOK(t, l, idemBatch(t, 1, 2, seq, 1)) // epoch 2, offsets 0-6
		}
		end, err := l.TruncateTo(2) // the batches the state remembered (2-6) go
		require.NoError(t, err)
		require.EqualValues(t, 2, end)

		_, err = l.Append(ctx, idemBatch(t, 1, 1, 0, 1), AppendOptions{})
		require.ErrorIs(t, err, ErrProducerFenced, "%v: a zombie of epoch 1", sync)
		dup := appendOK(t, l, idemBatch(t, 1, 2, 1, 1))
		require.True(t, dup.Duplicate, "%v: the batch at 1 stayed", sync)
		require.EqualValues(t, 1, dup.FirstOffset)
		_, err = l.Append(ctx, idemBatch(t, 1, 2, 3, 1), AppendOptions{})
		require.ErrorIs(t, err, ErrOutOfOrderSequence, "%v: sequence 2 comes next", sync)
		res := appendOK(t, l, idemBatch(t, 1, 2, 2, 1))
		require.False(t, res.Duplicate)
		require.EqualValues(t, 2, res.FirstOffset)

		// The snapshot the truncation wrote holds the rebuilt state.
		l = e.crashReopen(l, cfg)
		dup = appendOK(t, l, idemBatch(t, 1, 2, 0, 1))
		require.True(t, dup.Duplicate, "%v: after a crash", sync)
		require.EqualValues(t, 0, dup.FirstOffset)
		require.NoError(t, l.Close())
	}
}
