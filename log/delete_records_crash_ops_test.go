package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestDeleteRecordsCrashAtEachOp: a crash at each file-system operation
// of a DeleteRecordsBefore past every producer-state snapshot (which
// writes one as of the log end first, 7b7129c), with and without the
// unsynced directory operations persisting in part (Reorder): the log
// start is the old or the new one, the records at or past it are there,
// the leader epochs begin at it, and the idempotent producer's retry of
// its last batch is a duplicate.
func TestDeleteRecordsCrashAtEachOp(t *testing.T) {
	cfg := Config{SegmentBytes: 300}
	dir := "/data/topic-0"
	type built struct {
		l     *Log
		mem   *vfs.MemFS
		last  []byte
		end   int64
		start int64
	}
	var onOp func()
	build := func() built {
		mem := vfs.NewMem()
		fs := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if onOp != nil {
				onOp()
			}
			return nil
		}))
		l, err := Open(dir, cfg, Options{FS: fs, Clock: newClock()})
		require.NoError(t, err)
		var last []byte
		for seq := int32(0); seq < 12; seq++ {
			b := keyedProducerBatch(t, seq, "k")
			last = append([]byte(nil), b...)
			_, err := l.Append(t.Context(), b, AppendOptions{LeaderEpoch: seq / 4})
			require.NoError(t, err)
		}
		require.NoError(t, l.Flush(t.Context()))
		require.NoError(t, l.Maintain(t.Context()))
		return built{l: l, mem: mem, last: last, end: l.LogEndOffset(), start: l.LogStartOffset()}
	}
	b := build()
	n := 0
	onOp = func() { n++ }
	_, err := b.l.DeleteRecordsBefore(context.Background(), b.end-1)
	require.NoError(t, err)
	onOp = nil
	require.NoError(t, b.l.Close())
	t.Logf("%d file-system operations", n)
	for k := 0; k <= n; k++ {
		for _, reorder := range []bool{false, true} {
			t.Run(fmt.Sprintf("k=%d/reorder=%v", k, reorder), func(t *testing.T) {
				b := build()
				var crashed *vfs.MemFS
				i := 0
				onOp = func() {
					if i == k && crashed == nil {
						crashed = b.mem.CrashClone(vfs.CrashOptions{Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(k), 1))})
					}
					i++
				}
				_, err := b.l.DeleteRecordsBefore(context.Background(), b.end-1)
				onOp = nil
				require.NoError(t, err)
				if crashed == nil {
					crashed = b.mem.CrashClone(vfs.CrashOptions{Reorder: reorder})
				}
				require.NoError(t, b.l.Discard())
				l, err := Open(dir, cfg, Options{FS: crashed, Clock: newClock()})
				require.NoError(t, err)
				defer l.Close()
				require.Equal(t, b.end, l.LogEndOffset())
				require.Contains(t, []int64{b.start, b.end - 1}, l.LogStartOffset())
				require.Len(t, readAll(t, l, l.LogStartOffset()), int(b.end-l.LogStartOffset()))
				eps := l.LeaderEpochs()
				require.Equal(t, l.LogStartOffset(), eps[0].StartOffset, "epochs %v", eps)
				res, err := l.Append(t.Context(), b.last, AppendOptions{})
				require.NoError(t, err)
				require.True(t, res.Duplicate, "the retry was appended again at %d", res.FirstOffset)
				require.Equal(t, b.end-1, res.FirstOffset)
			})
		}
	}
}
