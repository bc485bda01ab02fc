package log

import (
	"context"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestCloseWritesOnlyChangedCheckpoints: a clean Close writes the
// recovery-point and log-start checkpoints only when they would change
// (an idle log's hold what it would write: its last Maintain wrote the
// one, Open found both), and the next Open finds the log as it was
// either way, cleanly closed. The clean-shutdown marker is written at
// every Close (the producer state's snapshot: see
// TestCloseWritesTheProducerSnapshotOnlyWhenChanged).
func TestCloseWritesOnlyChangedCheckpoints(t *testing.T) {
	ctx := context.Background()
	fsys, closeWrites := closeWritesOn(t, tmpSuffix)
	clock := newClock()
	open := func() *Log {
		t.Helper()
		l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fsys, Clock: clock})
		require.NoError(t, err)
		return l
	}
	recovery, start, marker := recoveryPointFile+tmpSuffix, logStartFile+tmpSuffix, cleanShutdownFile+tmpSuffix

	l := open()
	_, err := l.Append(ctx, valueBatch(t, 1_700_000_000_000, "a", "b"), AppendOptions{})
	require.NoError(t, err)
	require.Subset(t, closeWrites(l), []string{recovery, start, marker}, "a new log's Close writes each")

	l = open()
	w := closeWrites(l)
	require.Contains(t, w, marker)
	require.NotContains(t, w, recovery, "Open found the recovery point Close would write")
	require.NotContains(t, w, start, "Open found the log start Close would write")

	l = open()
	_, err = l.Append(ctx, valueBatch(t, 1_700_000_000_001, "c"), AppendOptions{})
	require.NoError(t, err)
	w = closeWrites(l)
	require.Contains(t, w, recovery, "the log end moved")
	require.NotContains(t, w, start)

	l = open()
	_, err = l.Append(ctx, valueBatch(t, 1_700_000_000_002, "d"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Maintain(ctx)) // writes the recovery point: the end, all synced
	w = closeWrites(l)
	require.NotContains(t, w, recovery, "Maintain wrote the recovery point Close would write")
	require.NotContains(t, w, start)

	l = open()
	require.NoError(t, l.Roll())
	_, err = l.Append(ctx, valueBatch(t, 1_700_000_000_003, "e"), AppendOptions{})
	require.NoError(t, err)
	_, err = l.DeleteRecordsBefore(ctx, 4)
	require.NoError(t, err)
	require.Equal(t, int64(4), l.LogStartOffset())
	w = closeWrites(l)
	require.NotContains(t, w, start, "DeleteRecords wrote the log start Close would write")

	l = open()
	defer l.Close()
	require.Equal(t, Offsets{Start: 4, Durable: 5, End: 5}, l.Offsets())
	require.Equal(t, int64(5), l.recovery, "the recovery point Open found")
	data, err := l.ReadInto(nil, 4, 1<<20, l.LogEndOffset())
	require.NoError(t, err)
	require.Equal(t, []string{"e"}, batchValues(t, data))
}

// TestCloseWritesCheckpointsNotKnownOnDisk: Close skips a checkpoint only
// when the log knows the file holds what it would write (rpWritten,
// startWritten), not when the log merely holds that offset in memory: a
// recovery point whose write at a Maintain failed (the disk full: the
// recovery point moved in memory all the same), and a directory copied
// without its recovery-point file (Open takes the marker's log end for
// it), get the file written by Close, so that the next Open finds it
// there and the log clean.
func TestCloseWritesCheckpointsNotKnownOnDisk(t *testing.T) {
	t.Run("recovery point whose write failed", func(t *testing.T) {
		e, l, on, n := checkpointFailLog(t, Config{Sync: SyncAlways}, 5)
		on.Store(true)
		require.ErrorIs(t, l.Maintain(t.Context()), vfs.ErrInjected)
		require.EqualValues(t, 1, n.Load())
		on.Store(false)
		require.NoError(t, l.Close())
		require.EqualValues(t, 5, recoveryPointOnDisk(t, e.fs, e.dir), "Close wrote the recovery point")
		l = e.open(Config{Sync: SyncAlways})
		defer l.Close()
		require.True(t, l.Recovery().Clean)
	})
	t.Run("no recovery-point file", func(t *testing.T) {
		e := newEnv(t)
		l := e.open(Config{Sync: SyncAlways})
		appendEach(t, l, 1_700_000_000_000, "a", "b", "c")
		require.NoError(t, l.Close())
		require.NoError(t, e.fs.Remove(filepath.Join(e.dir, recoveryPointFile)))
		l = e.open(Config{Sync: SyncAlways})
		require.True(t, l.Recovery().Clean, "the marker gives the recovery point")
		require.NoError(t, l.Close())
		_, err := e.fs.Stat(filepath.Join(e.dir, recoveryPointFile))
		require.NoError(t, err, "Close wrote the recovery-point file")
		require.EqualValues(t, 3, recoveryPointOnDisk(t, e.fs, e.dir))
	})
}

// TestCloseAfterAProcessCrashLeavesDurableCheckpoints: a process that
// dies between a checkpoint's rename and the fsync of its directory
// leaves the new file in the page cache only; the next process's Open
// finds it (rpWritten, startWritten) and its Close skips writing it
// again. The checkpoint must be durable all the same (Open syncs the
// directory, and so does the marker's write): a power cut after that
// Close leaves a log that opens clean, at the offsets it had. The
// process dies at the recovery point's write (a Maintain), the log
// start's (DeleteRecords) or the clean-shutdown marker's (a Close that
// itself skipped both).
func TestCloseAfterAProcessCrashLeavesDurableCheckpoints(t *testing.T) {
	for _, dying := range []string{recoveryPointFile, logStartFile, cleanShutdownFile} {
		t.Run(dying, func(t *testing.T) {
			mem := vfs.NewMem()
			var armed, renamed, dead atomic.Bool
			var created []string
			var mu sync.Mutex
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				switch {
				case dead.Load():
					return vfs.ErrInjected
				case op == vfs.OpRename && armed.Load() && filepath.Base(name) == dying+tmpSuffix:
					renamed.Store(true)
				case op == vfs.OpSyncDir && renamed.Load():
					dead.Store(true) // the process dies before the fsync
					return vfs.ErrInjected
				}
				return nil
			}))
			counting := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpCreate && strings.HasSuffix(name, tmpSuffix) {
					mu.Lock()
					created = append(created, filepath.Base(name))
					mu.Unlock()
				}
				return nil
			}))
			cfg := Config{Sync: SyncAlways}
			open := func(fsys vfs.FS) *Log {
				t.Helper()
				l, err := Open("/d/t-0", cfg, Options{FS: fsys, Clock: newClock()})
				require.NoError(t, err)
				return l
			}

			l := open(fsys)
			appendEach(t, l, 1_700_000_000_000, "a", "b", "c")
			require.NoError(t, l.Close()) // writes both checkpoints
			l = open(fsys)                // clean: a Close would skip both
			require.True(t, l.Recovery().Clean)
			armed.Store(true)
			var err error
			switch dying {
			case recoveryPointFile:
				appendEach(t, l, 1_700_000_000_001, "d")
				err = l.Maintain(t.Context())
			case logStartFile:
				_, err = l.DeleteRecordsBefore(t.Context(), 2)
			case cleanShutdownFile:
				err = l.Close()
			}
			require.ErrorIs(t, err, vfs.ErrInjected)
			require.True(t, dead.Load(), "the process died after the rename")
			_ = l.Discard() // the dead process's: nothing written, its failure forgotten (a new process)
			wantStart, wantEnd := int64(0), int64(3)
			switch dying {
			case recoveryPointFile:
				wantEnd = 4
			case logStartFile:
				wantStart = 2
			}
			// The rename reached the page cache only: a power cut now
			// would undo it.
			_, err = mem.Stat(filepath.Join("/d/t-0", dying))
			require.NoError(t, err)
			if dying != cleanShutdownFile {
				want := map[string]int64{recoveryPointFile: wantEnd, logStartFile: wantStart}[dying]
				off, err := readOffset(mem, "/d/t-0", dying, -1)
				require.NoError(t, err)
				require.Equal(t, want, off)
				off, err = readOffset(mem.CrashClone(vfs.CrashOptions{}), "/d/t-0", dying, -1)
				require.NoError(t, err)
				require.NotEqual(t, want, off, "durable already")
			} else {
				_, err = mem.CrashClone(vfs.CrashOptions{}).Stat(filepath.Join("/d/t-0", dying))
				require.ErrorIs(t, err, fs.ErrNotExist, "durable already")
			}

			l = open(counting)
			require.Equal(t, Offsets{Start: wantStart, Durable: wantEnd, End: wantEnd}, l.Offsets())
			mu.Lock()
			created = nil
			mu.Unlock()
			require.NoError(t, l.Close())
			mu.Lock()
			require.NotContains(t, created, recoveryPointFile+tmpSuffix, "Close found the recovery point written")
			require.NotContains(t, created, logStartFile+tmpSuffix, "Close found the log start written")
			mu.Unlock()

			l = open(mem.CrashClone(vfs.CrashOptions{Reorder: true}))
			defer l.Close()
			require.True(t, l.Recovery().Clean, "the power cut after the clean Close")
			require.Equal(t, Offsets{Start: wantStart, Durable: wantEnd, End: wantEnd}, l.Offsets())
			require.Equal(t, wantEnd, l.recovery)
		})
	}
}

// TestCloseWritesTheProducerSnapshotOnlyWhenChanged: Close writes the
// producer-state snapshot as of the log end only when the file there does
// not hold the bytes it would write (snapHeld): not after an Open that
// loaded it, with or without an idle Maintain between; but when the log
// end moved, and when the state at the same end changed (an id expired),
// so that the next Open loads the state Close left.
func TestCloseWritesTheProducerSnapshotOnlyWhenChanged(t *testing.T) {
	ctx := context.Background()
	fsys, closeWrites := closeWritesOn(t, snapshotSuffix+tmpSuffix)
	clock := newClock()
	open := func() *Log {
		t.Helper()
		l, err := Open("/d/t-0", Config{Sync: SyncAlways, RetentionTime: -1}, Options{FS: fsys, Clock: clock, ProducerExpiration: time.Hour})
		require.NoError(t, err)
		return l
	}

	l := open()
	_, err := l.Append(ctx, producerBatch1(t, 7, clock.Now().UnixMilli()), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{snapshotName(1) + tmpSuffix}, closeWrites(l), "a new state's Close writes it")

	l = open()
	require.Empty(t, closeWrites(l), "Open loaded the snapshot Close would write")

	l = open()
	require.NoError(t, l.Maintain(ctx))
	require.Empty(t, closeWrites(l), "an idle Maintain changes nothing")

	l = open()
	_, err = l.Append(ctx, valueBatch(t, clock.Now().UnixMilli(), "a"), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{snapshotName(2) + tmpSuffix}, closeWrites(l), "the log end moved")

	l = open()
	require.Len(t, l.producers, 1)
	clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(ctx)) // forgets id 7, expired
	require.Empty(t, l.producers)
	require.Equal(t, []string{snapshotName(2) + tmpSuffix}, closeWrites(l), "the state at the same end changed")

	l = open()
	require.Empty(t, l.producers, "Open loads the state Close left")
	require.Equal(t, int64(2), l.info.ProducerSnapshot)
	// The file Open loaded goes with a truncation; the same state at the
	// same end again is no file there.
	_, err = l.TruncateTo(1)
	require.NoError(t, err)
	_, err = l.Append(ctx, valueBatch(t, clock.Now().UnixMilli(), "b"), AppendOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{snapshotName(2) + tmpSuffix}, closeWrites(l), "the file it held was removed")

	l = open()
	defer l.Close()
	require.Equal(t, int64(2), l.info.ProducerSnapshot)
}

// closeWritesOn returns a memory FS that records the files created in it
// whose name ends in suffix (a checkpoint's temporary file, say), and
// closeWrites, which closes a log on it and returns the base names of
// those its Close created.
func closeWritesOn(t *testing.T, suffix string) (vfs.FS, func(*Log) []string) {
	var mu sync.Mutex
	var created []string
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasSuffix(name, suffix) {
			mu.Lock()
			defer mu.Unlock()
			created = append(created, filepath.Base(name))
		}
		return nil
	}))
	return fsys, func(l *Log) []string {
		t.Helper()
		mu.Lock()
		created = nil
		mu.Unlock()
		require.NoError(t, l.Close())
		mu.Lock()
		defer mu.Unlock()
		return created
	}
}
