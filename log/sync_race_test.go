package log

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// rollDuringSync opens a log on an in-memory FS whose next fsync of a
// .log fails once armed, with one record appended, and sets
// testHookSyncListed so that the first group-commit fsync after it, once
// it has listed the active segment, rolls the log with that failure armed
// first: the roll's seal fsyncs the segment and fails (fencing the log),
// and then the group commit's own fsync of the same file runs. It returns
// the memory FS, the config and the log.
func rollDuringSync(t *testing.T, cfg Config) (*vfs.MemFS, Config, *Log) {
	t.Helper()
	mem := vfs.NewMem()
	var armed atomic.Bool
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			return vfs.ErrInjected
		}
		return nil
	}))
	l, err := Open("/d/t-0", cfg, Options{FS: fsys, Clock: newClock()})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	appendOK(t, l, valueBatch(t, 1_700_000_000_000, "durable"))
	var once sync.Once
	testHookSyncListed = func(hl *Log) {
		if hl != l {
			return
		}
		once.Do(func() {
			armed.Store(true)
			require.ErrorIs(t, l.Roll(), ErrLogFenced, "the roll's fsync failed")
		})
	}
	t.Cleanup(func() { testHookSyncListed = nil })
	return mem, cfg, l
}

// TestSyncAfterAFailedSyncIsNotTrusted: a failed fsync of a segment may
// leave its pages marked clean (see vfs.WithFaults, and Linux), so that
// the next fsync of the file succeeds without writing them. A group
// commit's fsync that ran after a roll's failed one, on the same segment,
// succeeded so: it moved the durable offset past the failure's, and
// acknowledged an append under SyncAlways (and let readers see it below
// the high watermark) that a power cut then took. Found by
// TestCrashReadersSee (seed 10391 under load: a torn batch below the
// recovery point, "offsets from 11 were durable up to 13", and a log end
// below a durable offset the log had reported). Fails on the old code.
func TestSyncAfterAFailedSyncIsNotTrusted(t *testing.T) {
	mem, cfg, l := rollDuringSync(t, Config{})
	durable := l.DurableOffset()
	_, err := l.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "acked?"), AppendOptions{})
	require.ErrorIs(t, err, ErrLogFenced, "an append whose fsync followed a failed one is not acknowledged")
	require.Equal(t, durable, l.DurableOffset(), "the durable offset stays where the failed fsync left it")
	require.Equal(t, durable, NewPartition("t", 0, l).HighWatermark())

	l2, err := Open("/d/t-0", cfg, Options{FS: mem.CrashClone(vfs.CrashOptions{}), Clock: newClock()})
	require.NoError(t, err)
	defer l2.Close()
	require.GreaterOrEqual(t, l2.LogEndOffset(), durable)
}
