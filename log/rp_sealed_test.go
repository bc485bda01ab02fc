package log

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestCheckpointInsideARolledUnsyncedSegment: under SyncNever a roll
// writes no checkpoint, so one that Maintain chose before the roll is
// written after it, inside the segment rolled (unsynced past the
// checkpoint) with newer ones after it. A power loss tears the rolled
// segment past the checkpoint: Open cuts it there, drops the newer
// segments, and keeps every offset below the checkpoint. (Seed 14 left
// the sector holding the checkpoint's end unwritten, and the fourth
// unsynced batch starting 2 bytes before that sector's end: Open took it
// for corruption; see segment.TestRecoverHoleEndingInsideTheNextBatch.)
func TestCheckpointInsideARolledUnsyncedSegment(t *testing.T) {
	for seed := range 30 {
		mem := vfs.NewMem()
		e := newEnv(t)
		e.fs = mem
		cfg := Config{Sync: SyncNever, SegmentBytes: 1000, RetentionTime: -1}
		l := e.open(cfg)
		for i := range 3 {
			appendOK(t, l, valueBatch(t, 1_700_000_000_000, fmt.Sprint("synced", i)))
		}
		require.NoError(t, l.Flush(t.Context()))
		testHookCheckpointChosen = func(hl *Log) {
			testHookCheckpointChosen = nil
			for i := 0; hl.Segments() < 3; i++ {
				appendOK(t, hl, valueBatch(t, 1_700_000_000_000, fmt.Sprint("unsynced", i)))
			}
		}
		require.NoError(t, l.Maintain(t.Context()))
		testHookCheckpointChosen = nil
		require.Equal(t, int64(3), recoveryPointOnDisk(t, mem, e.dir))
		clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailTorn, Reorder: true, Rand: rand.New(rand.NewPCG(uint64(seed), 3))})
		l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
		require.NoError(t, err, "seed %d", seed)
		require.GreaterOrEqual(t, l2.LogEndOffset(), int64(3))
		require.Len(t, readAll(t, l2, 0), int(l2.LogEndOffset()))
		require.NoError(t, l2.Close())
		require.NoError(t, l.Close())
	}
}
