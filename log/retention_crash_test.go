package log

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestRetentionRollCrash cuts the power before each file-system operation
// of an ApplyRetention whose size rule takes the first two of four
// segments and whose time rule the other two, the active one rolled
// first (a strict crash, and four that persist some unsynced directory
// operations in their order): Open then reads every record from the log
// start it finds to the same log end, and the next ApplyRetention
// finishes the deletion.
func TestRetentionRollCrash(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncAlways, SyncNever} {
		for k := 0; ; k++ {
			mem := vfs.NewMem()
			var clones []*vfs.MemFS
			op, armed := 0, false
			fs := vfs.WithFaults(mem, vfs.InjectorFunc(func(vfs.Op, string) error {
				if armed {
					if op == k {
						for s := range uint64(4) {
							clones = append(clones, mem.CrashClone(vfs.CrashOptions{Reorder: true, Rand: rand.New(rand.NewPCG(s, 1))}))
						}
						clones = append(clones, mem.CrashClone(vfs.CrashOptions{}))
					}
					op++
				}
				return nil
			}))
			clock := newClock()
			old := clock.Now().UnixMilli() - 2*time.Hour.Milliseconds()
			one := int64(len(valueBatch(t, old, "x")))
			cfg := Config{Sync: sync, SegmentBytes: one, RetentionTime: time.Hour, RetentionBytes: 2 * one}
			l, err := Open("/d/t-0", cfg, Options{FS: fs, Clock: clock})
			require.NoError(t, err)
			for range 4 {
				appendOK(t, l, valueBatch(t, old, "x"))
			}
			require.NoError(t, l.Flush(t.Context()))
			armed = true
			_, err = l.ApplyRetention(context.Background())
			armed = false
			require.NoError(t, err)
			require.Equal(t, int64(4), l.LogStartOffset())
			require.NoError(t, l.Close())
			if len(clones) == 0 {
				require.Greater(t, k, 10, "ApplyRetention's file-system operations")
				break
			}
			for i, c := range clones {
				l2, err := Open("/d/t-0", cfg, Options{FS: c, Clock: clock})
				require.NoError(t, err, "%v, crash before op %d, clone %d", sync, k, i)
				start, end := l2.LogStartOffset(), l2.LogEndOffset()
				require.Equal(t, int64(4), end, "%v, crash before op %d, clone %d", sync, k, i)
				require.Len(t, readAll(t, l2, start), int(end-start), "%v, crash before op %d, clone %d", sync, k, i)
				_, err = l2.ApplyRetention(context.Background())
				require.NoError(t, err)
				require.Equal(t, int64(4), l2.LogStartOffset(), "%v, crash before op %d, clone %d", sync, k, i)
				require.Equal(t, 1, l2.Segments(), "%v, crash before op %d, clone %d", sync, k, i)
				require.NoError(t, l2.Close())
			}
		}
	}
}
