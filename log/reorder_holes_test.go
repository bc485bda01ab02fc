package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestCrashTornTailWithHoleOpens: a log whose tail was not synced (here
// SyncNever, whose recovery point lags by design; under SyncAlways, the
// batches of one group commit) crashes on a file system that wrote the
// file's new size and some of its new sectors but not others — XFS,
// which logs a file's size as each write completes, or any file system
// without ext4's data=ordered: zeros stand in the tail, and whole valid
// batches may follow them (vfs.CrashOptions.Reorder with TailTorn). Open
// must cut that tail — none of it was durable — keep everything below the
// recovery point, and open.
//
// The sequence: Append batches A, B, C (one write each, not synced; A ends
// mid-sector, B spans the next sector, C the one after); the disk commits
// the new size and writes the sector holding C but not the one holding
// the rest of B; power loss. The .log then holds, past the recovery point,
// A, a zero sector, then B's end and C whole. segment.Recover took C,
// valid after the bad bytes, for corruption, and Open failed: it now takes
// a whole zero sector before it for the mark of a write never made.
//
// Under SyncAlways the first batches were acknowledged (fsynced), and the
// rest appended without waiting for their fsync (AppendAsync, a group
// commit under way): the same holes stand past the synced ones, and Open
// cut them only under SyncNever until the recovery point followed the
// durable offset (Maintain): it refused them as possibly acknowledged.
func TestCrashTornTailWithHoleOpens(t *testing.T) {
	for _, sync := range []SyncPolicy{SyncNever, SyncAlways} {
		for _, maintain := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/maintain=%v", sync, maintain), func(t *testing.T) {
				testCrashTornTailWithHoleOpens(t, Config{Sync: sync}, maintain)
			})
		}
	}
}

func testCrashTornTailWithHoleOpens(t *testing.T, cfg Config, maintain bool) {
	for seed := range 40 {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			mem := vfs.NewMem()
			e := newEnv(t)
			e.fs = mem
			l := e.open(cfg)
			const synced, n = 10, 40
			for i := range n {
				data := valueBatch(t, 1_700_000_000_000+int64(i), strings.Repeat(fmt.Sprint(i%10), 100+37*i))
				if i < synced || cfg.Sync == SyncNever {
					appendOK(t, l, data)
				} else {
					_, _, err := l.AppendAsync(context.Background(), data, AppendOptions{})
					require.NoError(t, err)
				}
				if i == synced-1 {
					require.NoError(t, l.Flush(context.Background()))
					if maintain {
						require.NoError(t, l.Maintain(context.Background()))
					}
				}
			}
			clone := mem.CrashClone(vfs.CrashOptions{Tail: vfs.TailTorn, Reorder: true,
				Rand: rand.New(rand.NewPCG(uint64(seed), 99))})
			l.Close()
			l2, err := Open(e.dir, cfg, Options{FS: clone, Clock: e.clock})
			require.NoError(t, err, "open after the crash")
			defer l2.Close()
			require.GreaterOrEqual(t, l2.LogEndOffset(), int64(synced))
			if maintain {
				require.Equal(t, int64(synced), l2.Recovery().RecoveryPoint)
			}
			recs := readAll(t, l2, 0)
			require.Len(t, recs, int(l2.LogEndOffset()))
		})
	}
}
