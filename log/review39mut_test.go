package log

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The tests of this file close the gaps that session 39's mutation pass
// found in the code changed since 85f1e0f (the ctx-aware locks, the line
// hand-on): each names the mutant it kills.

// TestOptionsGoStartsTheSyncRound: a group commit's fsync round
// run apart from its waiter (its ctx can end: on a file system other than
// the bare memory FS) is started by Options.Go, before Close returns, so
// that an owner counting the log's goroutines with it (a broker) knows
// of it. Kills: the round started by a go statement whatever Options.Go.
func TestOptionsGoStartsTheSyncRound(t *testing.T) {
	var calls atomic.Int32
	var wg sync.WaitGroup
	goFunc := func(f func()) {
		calls.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Clock: newClock(), Go: goFunc})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background()) // a ctx that can end: the round on its own goroutine
	defer cancel()
	_, err = l.Append(ctx, valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NotZero(t, calls.Load(), "the fsync round was not started by Options.Go")
	wg.Wait()
}

// TestRelativeDirUnderAWrappedOSFS: Open makes a relative dir
// absolute on the OS file system under any vfs.Wrapper too (Open's doc),
// so Dir is absolute for a log opened through vfs.WithFaults(vfs.OS).
// Kills: the check made on the FS itself rather than vfs.Unwrap's.
func TestRelativeDirUnderAWrappedOSFS(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	fs := vfs.WithFaults(vfs.OS, vfs.InjectorFunc(func(vfs.Op, string) error { return nil }))
	l, err := Open(filepath.Join("data", "t-0"), Config{}, Options{FS: fs, Clock: newClock()})
	require.NoError(t, err)
	defer l.Close()
	require.True(t, filepath.IsAbs(l.Dir()), "Dir %q", l.Dir())
	abs, err := filepath.Abs(filepath.Join("data", "t-0"))
	require.NoError(t, err)
	require.Equal(t, abs, l.Dir())
}
