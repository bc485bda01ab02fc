package log

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenContextCancelledAnywhereProducers: an OpenContext of a crashed
// log of an idempotent producer (several segments, a torn tail, no
// recovery point, with and without its producer-state snapshots) cut
// short at each of its file-system operations, then a plain Open, and one
// after a crash (with and without Reorder): the producer's retry of its
// last batch is a duplicate, the next sequence is accepted, and every
// record is there. TestOpenContextCancelledAnywhere checks the records
// of a log without producers. In -short and under the race detector it
// takes a third of the operations (openCancelPoints).
func TestOpenContextCancelledAnywhereProducers(t *testing.T) {
	for _, snapshots := range []bool{true, false} {
		t.Run(fmt.Sprint("snapshots=", snapshots), func(t *testing.T) {
			testOpenContextCancelledProducers(t, snapshots)
		})
	}
}

func testOpenContextCancelledProducers(t *testing.T, snapshots bool) {
	cfg := Config{Sync: SyncAlways, SegmentBytes: 2 << 10}
	batch := func(seq int32) []byte {
		var b record.Builder
		b.Reset()
		b.SetProducer(9, 3, seq)
		b.Append(1_700_000_000_000+int64(seq), fmt.Appendf(nil, "k%d", seq), []byte(strings.Repeat("v", 200)), nil)
		out, err := b.AppendTo(nil, compression.None)
		require.NoError(t, err)
		return out
	}
	mem := vfs.NewMem()
	l, err := Open(crashDir, cfg, Options{FS: mem, Clock: newClock()})
	require.NoError(t, err)
	const n = 30
	for seq := int32(0); seq < n; seq++ {
		appendOK(t, l, batch(seq))
	}
	crashed := mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Close())
	require.NoError(t, crashed.Remove(filepath.Join(crashDir, recoveryPointFile)))
	if !snapshots {
		removeProducerSnapshots(t, crashed, crashDir)
	}
	require.NoError(t, crashed.SyncDir(crashDir))
	names, err := crashed.List(crashDir)
	require.NoError(t, err)
	var last string
	for _, name := range names {
		if strings.HasSuffix(name, segment.LogSuffix) {
			last = name
		}
	}
	f, err := crashed.Open(filepath.Join(crashDir, last))
	require.NoError(t, err)
	_, err = f.Write(tornGarbage)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())

	check := func(t *testing.T, fsys vfs.FS) {
		t.Helper()
		l, err := Open(crashDir, cfg, Options{FS: fsys, Clock: newClock()})
		require.NoError(t, err)
		defer l.Close()
		require.EqualValues(t, n, l.LogEndOffset())
		require.Len(t, readAll(t, l, 0), n)
		res, err := l.Append(context.Background(), batch(n-1), AppendOptions{})
		require.NoError(t, err)
		require.True(t, res.Duplicate, "the retry was appended again at %d", res.FirstOffset)
		appendOK(t, l, batch(n))
	}
	ops := countOps(t, crashed, cfg)
	cut := 0
	for _, k := range openCancelPoints(t, ops) {
		fsys := crashed.CrashClone(vfs.CrashOptions{})
		ctx, cancel := context.WithCancel(context.Background())
		var seen atomic.Int64
		l, err := OpenContext(ctx, crashDir, cfg, Options{FS: vfs.WithFaults(fsys, vfs.InjectorFunc(func(vfs.Op, string) error {
			if seen.Add(1) == int64(k) {
				cancel()
			}
			return nil
		})), Clock: newClock()})
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
			cut++
		} else {
			// Cancelled after recovery's last look: a crash, not a Close.
			require.NoError(t, l.Discard())
		}
		for _, reorder := range []bool{false, true} {
			t.Run(fmt.Sprintf("k=%d/reorder=%v", k, reorder), func(t *testing.T) {
				check(t, fsys.CrashClone(vfs.CrashOptions{Reorder: reorder, Rand: rand.New(rand.NewPCG(uint64(k), 2))}))
			})
		}
		t.Run(fmt.Sprintf("k=%d/no crash", k), func(t *testing.T) { check(t, fsys) })
	}
	t.Logf("%d operations, %d cut short", ops, cut)
	require.Greater(t, cut, 1)
}
