package log

import (
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// TestMaintainWritesNoUnchangedCheckpoint: a Maintain whose durable
// offset is the recovery point last written writes no recovery-point
// checkpoint again: after the Open that wrote it, after a Maintain that
// wrote it, and after a Maintain that wrote it again once a write had
// failed (rpWritten records each successful write, a recovering
// Open's too). Any
// write of the checkpoint fails here while it is not due: a Maintain
// that wrote it would fail.
func TestMaintainWritesNoUnchangedCheckpoint(t *testing.T) {
	e := newEnv(t)
	mem := vfs.NewMem()
	e.fs = mem
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for i := range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	// The power is cut: the Open after it recovers the log and writes
	// the recovery point (a clean Close's Open leaves Close's in place).
	crashed := mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, l.Close())
	var on atomic.Bool
	var n atomic.Int32
	e.fs = vfs.WithFaults(crashed, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && on.Load() && strings.HasSuffix(name, recoveryPointFile+tmpSuffix) {
			n.Add(1)
			return vfs.ErrInjected
		}
		return nil
	}))

	l = e.open(cfg) // writes the recovery point 3
	defer l.Close()
	require.EqualValues(t, 3, recoveryPointOnDisk(t, e.fs, e.dir))
	on.Store(true)
	require.NoError(t, l.Maintain(t.Context()), "after Open: nothing to write")
	require.Zero(t, n.Load())

	on.Store(false)
	appendOK(t, l, valueBatch(t, 1_700_000_000_003, "v"))
	require.NoError(t, l.Maintain(t.Context()))
	require.EqualValues(t, 4, recoveryPointOnDisk(t, e.fs, e.dir))
	on.Store(true)
	require.NoError(t, l.Maintain(t.Context()), "after a Maintain's write: nothing to write")
	require.Zero(t, n.Load())

	appendOK(t, l, valueBatch(t, 1_700_000_000_004, "v"))
	require.ErrorIs(t, l.Maintain(t.Context()), vfs.ErrInjected)
	require.EqualValues(t, 1, n.Load())
	on.Store(false)
	require.NoError(t, l.Maintain(t.Context()), "the failed write is written again")
	require.EqualValues(t, 5, recoveryPointOnDisk(t, e.fs, e.dir))
	on.Store(true)
	require.NoError(t, l.Maintain(t.Context()), "after the write again: nothing to write")
	require.EqualValues(t, 1, n.Load())
}

// TestMaintainAfterACleanOpenWritesNoCheckpoint: after a clean Close,
// the recovery-point checkpoint on disk is the one Open keeps: the first
// Maintain does not write it again (it did, once a log an Open, before
// rpWritten was read from the file).
func TestMaintainAfterACleanOpenWritesNoCheckpoint(t *testing.T) {
	e := newEnv(t)
	var on atomic.Bool
	var n atomic.Int32
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && on.Load() && strings.HasSuffix(name, recoveryPointFile+tmpSuffix) {
			n.Add(1)
		}
		return nil
	}))
	cfg := Config{Sync: SyncAlways}
	l := e.open(cfg)
	for i := range 3 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	require.NoError(t, l.Close())
	l = e.open(cfg)
	defer l.Close()
	require.True(t, l.Recovery().Clean)
	require.EqualValues(t, 3, recoveryPointOnDisk(t, e.fs, e.dir))
	on.Store(true)
	require.NoError(t, l.Maintain(t.Context()))
	require.Zero(t, n.Load(), "the checkpoint on disk already holds 3")
}
