package log

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// epochKeyedBatch is producer 1's batch of one record of key at epoch and
// sequence seq.
func epochKeyedBatch(t testing.TB, epoch int16, seq int32, key string) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	b.SetProducer(1, epoch, seq)
	b.Append(1_700_000_000_000, []byte(key), []byte("v"), nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}

// TestProducerSnapshotPastTheEndNewEpochAfterACompactedBatch: a producer
// whose batches past the recovered end were all lost, the first of them
// the start of a newer epoch, is not given the state replayed from the
// log, whose last batch of the older epoch is not the last one the log
// held: compaction removed a later one (and here the truncation removed
// the one after). The snapshot past the end held the newer epoch's
// batches only, which say nothing of where the older epoch ended. Open
// took the replayed state all the same (the lost batch began the newer
// epoch at sequence 0), and the retry of the older epoch's lost batch was
// refused as out of order: "expected sequence 1, got 2" (found by
// TestCrashSimTransientFaults, seed 447338501593, where a TruncateTo
// whose cleaner checkpoint could not be written, after it had cut the
// segments and before it wrote the snapshot as of its new end, was
// followed by a power cut). The producer is forgotten instead, as the
// truncation would have left it had it completed: its lost batches are
// appended, in order.
func TestProducerSnapshotPastTheEndNewEpochAfterACompactedBatch(t *testing.T) {
	mem := vfs.NewMem()
	var armed atomic.Bool
	e := newEnv(t)
	e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && strings.HasSuffix(name, cleanerFile+".tmp") {
			return vfs.ErrInjected
		}
		return nil
	}))
	cfg := Config{CleanupPolicy: Compact} // SyncAlways
	l := e.open(cfg)
	ctx := context.Background()
	appendOK(t, l, epochKeyedBatch(t, 0, 0, "a"))                                     // 0
	appendOK(t, l, epochKeyedBatch(t, 0, 1, "b"))                                     // 1: compaction removes it
	appendOK(t, l, batchOf(t, compression.None, kv{[]byte("b"), []byte("newer"), 1})) // 2
	require.NoError(t, l.Roll())
	lost := [][]byte{epochKeyedBatch(t, 0, 2, "c"), epochKeyedBatch(t, 1, 0, "d")}
	appendOK(t, l, bytes.Clone(lost[0])) // 3: the older epoch's last batch
	require.NoError(t, l.Roll())
	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, res.RecordsRemoved, "batch 1, not the producer's last, goes")
	require.EqualValues(t, 4, res.CleanedTo)
	appendOK(t, l, bytes.Clone(lost[1])) // 4: the newer epoch
	// Two more rolls: the snapshots at or below the recovery point kept
	// (retainedSnapshots) are those at 6 and 7, which hold epoch 1 only;
	// the one at 3 is pruned.
	for range 2 {
		require.NoError(t, l.Roll())
		appendOK(t, l, batchOf(t, compression.None, kv{[]byte("x"), []byte("x"), 1}))
	}
	require.NoError(t, l.Roll())
	l.mu.Lock()
	snapshots := slices.Clone(l.snapshots)
	l.mu.Unlock()
	require.Equal(t, []int64{6, 7}, snapshots)

	// The truncation to 3 cuts the segments, lowers the cleaner
	// checkpoint (4) and fails there, before the snapshot as of 3; the
	// power goes.
	armed.Store(true)
	_, err = l.TruncateTo(3)
	require.ErrorIs(t, err, vfs.ErrInjected)
	e.fs = mem.CrashClone(vfs.CrashOptions{})
	l.Close()
	l = e.open(cfg)
	defer l.Close()
	require.EqualValues(t, 3, l.LogEndOffset(), "%+v", l.Recovery())
	for i, data := range lost {
		res, err := l.Append(ctx, bytes.Clone(data), AppendOptions{})
		require.NoError(t, err, "retry of lost batch %d", i)
		require.False(t, res.Duplicate, "retry of lost batch %d", i)
		require.EqualValues(t, 3+i, res.FirstOffset, "retry of lost batch %d", i)
	}
	// Epoch 1 is known again: epoch 0 is fenced.
	_, err = l.Append(ctx, epochKeyedBatch(t, 0, 3, "e"), AppendOptions{})
	require.ErrorIs(t, err, ErrProducerFenced)
}
