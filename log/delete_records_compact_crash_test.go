package log

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestDeleteRecordsSnapshotThenGroupMergeCrash: the snapshot that
// DeleteRecordsBefore writes when none is left at or past the new start,
// then a compaction that merges small segments (dropping the empty
// batches an earlier pass kept) and a crash: the producer's retry of its
// last batch is still a duplicate, and its next batch follows.
func TestDeleteRecordsSnapshotThenGroupMergeCrash(t *testing.T) {
	ctx := context.Background()
	for _, maintain := range []bool{false, true} {
		t.Run(fmt.Sprint("maintain=", maintain), func(t *testing.T) {
			e := newEnv(t)
			cfg := Config{SegmentBytes: 4000, CleanupPolicy: Compact}
			l := e.open(cfg)
			seq := int32(0)
			var last []byte
			for i := 0; i < 30; i++ {
				b := keyedProducerBatch(t, seq, "k")
				last = append([]byte(nil), b...)
				seq++
				appendOK(t, l, b)
				if i%3 == 2 {
					require.NoError(t, l.Roll())
				}
			}
			require.NoError(t, l.Flush(ctx))
			require.NoError(t, l.Maintain(ctx))
			_, err := l.Compact(ctx)
			require.NoError(t, err)
			end := l.LogEndOffset()
			_, err = l.DeleteRecordsBefore(context.Background(), end-1)
			require.NoError(t, err)
			for i := 0; i < 6; i++ {
				appendOK(t, l, keyedBatch(t, fmt.Sprint("x", i%2)))
				require.NoError(t, l.Roll())
			}
			require.NoError(t, l.Flush(ctx))
			if maintain {
				require.NoError(t, l.Maintain(ctx))
			}
			_, err = l.Compact(ctx)
			require.NoError(t, err)
			segs := l.Segments()
			e.fs = e.fs.(*vfs.MemFS).CrashClone(vfs.CrashOptions{})
			require.NoError(t, l.Discard())
			l = e.open(cfg)
			defer l.Close()
			t.Logf("segments %d, end %d, start %d", segs, l.LogEndOffset(), l.LogStartOffset())
			res, err := l.Append(ctx, last, AppendOptions{})
			require.NoError(t, err)
			require.True(t, res.Duplicate, "retry appended again at %d", res.FirstOffset)
			appendOK(t, l, keyedProducerBatch(t, seq, "k"))
		})
	}
}

// keyedBatch is a batch of one record without a producer, of key key.
func keyedBatch(t testing.TB, key string) []byte {
	t.Helper()
	var b record.Builder
	b.Reset()
	b.Append(1_700_000_000_000, []byte(key), []byte("v"), nil)
	out, err := b.AppendTo(nil, compression.None)
	require.NoError(t, err)
	return out
}
