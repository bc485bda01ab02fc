package log

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReplayTakesALowerEpochAfterExpiry: a producer id whose
// state expired takes a batch of an older epoch as a new producer's (as
// Kafka's broker does: the expired entry is gone). The state Open
// rebuilds after a crash — the snapshot of a roll before the expiry,
// which still holds the newer epoch, and the batches after it replayed —
// must be the one the log had, as Kafka's replay takes each batch's epoch
// (ProducerStateEntry.update): a retry of the older epoch's last batch a
// duplicate, its next batch taken. The replay kept the newer epoch and
// refused both with ErrProducerFenced.
func TestReplayTakesALowerEpochAfterExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	open := func() *Log { return e.openIdem(nil) }
	l := open()
	appendOK(t, l, idemBatch(t, 7, 1, 0, 1))
	require.NoError(t, l.Roll()) // a snapshot at 1: producer 7 at epoch 1
	e.clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(ctx)) // producer 7 expires
	appendOK(t, l, idemBatch(t, 7, 0, 0, 1))
	appendOK(t, l, idemBatch(t, 7, 0, 1, 1))
	requireDuplicate(t, l, idemBatch(t, 7, 0, 1, 1), 2)

	// A power cut: Open loads the snapshot at 1 and replays the batches
	// after it.
	e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
	l.Close()
	l = open()
	defer l.Close()
	require.EqualValues(t, 1, l.Recovery().ProducerSnapshot)
	requireDuplicate(t, l, idemBatch(t, 7, 0, 1, 1), 2)
	res := appendOK(t, l, idemBatch(t, 7, 0, 2, 1))
	require.False(t, res.Duplicate)
	require.EqualValues(t, 3, res.FirstOffset)
}
