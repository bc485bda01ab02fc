package log

import (
	"context"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestDeleteRecordsKeepsProducersAcrossCrash: DeleteRecordsBefore past
// every producer-state snapshot (into the active segment) and then a
// crash: the idempotent producer's retry of its last batch, deleted, is
// still a duplicate after Open, as it is after a clean Close (the state
// outlives its batches, as Kafka's since KIP-360). Before, the deletion
// pruned every snapshot below the new log start, none was left at or
// past it, and Open replayed the state from the start, past every batch
// of the producer: the retry was appended again. Found by FuzzOpenFile
// (a log start checkpoint past the end).
func TestDeleteRecordsKeepsProducersAcrossCrash(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"crash", "crash after Maintain", "clean"} {
		e := newEnv(t)
		cfg := Config{SegmentBytes: 300}
		l := e.open(cfg)
		var last []byte
		for seq := int32(0); seq < 12; seq++ {
			b := keyedProducerBatch(t, seq, "k")
			last = append([]byte(nil), b...)
			appendOK(t, l, b)
		}
		require.Greater(t, l.Segments(), 1)
		end := l.LogEndOffset()
		_, err := l.DeleteRecordsBefore(context.Background(), end)
		require.NoError(t, err)
		require.NoError(t, l.Flush(ctx))
		switch mode {
		case "crash after Maintain":
			require.NoError(t, l.Maintain(ctx))
			fallthrough
		case "crash":
			e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
			require.NoError(t, l.Discard())
		case "clean":
			require.NoError(t, l.Close())
		}
		l = e.open(cfg)
		require.Equal(t, end, l.LogStartOffset(), mode)
		res, err := l.Append(ctx, last, AppendOptions{})
		require.NoError(t, err, mode)
		require.True(t, res.Duplicate, "%s: the retry was appended again at %d", mode, res.FirstOffset)
		require.Equal(t, end-1, res.FirstOffset, mode)
		require.Equal(t, end, l.LogEndOffset(), mode)
		require.NoError(t, l.Close())
	}
}
