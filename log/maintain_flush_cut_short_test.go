package log

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// heldSyncLog opens a SyncPeriodic log (flush.ms a second) on a MemFS
// under an injector that, while hold is set, holds the next fsync
// (closing inSync) until release is called. Not a *vfs.MemFS: the log
// runs a waiter's fsync on a goroutine of its own.
//
// release may be called more than once. The log is closed at the test's
// cleanup, after a release: a test that fails while the fsync is held
// (an assertion before its release) then ends at once, where a Close of
// its own, deferred, waited for the held fsync for good (in a synctest
// bubble too: Close waits on a lock, which the bubble does not count as
// blocked). So the tests do not close l themselves.
func heldSyncLog(t *testing.T) (e *env, l *Log, hold *atomic.Bool, inSync chan struct{}, release func()) {
	t.Helper()
	return heldSyncLogWith(t, Config{Sync: SyncPeriodic, FlushInterval: time.Second, RetentionTime: -1})
}

// heldSyncLogWith is heldSyncLog with the log's Config.
func heldSyncLogWith(t *testing.T, cfg Config) (e *env, l *Log, hold *atomic.Bool, inSync chan struct{}, release func()) {
	t.Helper()
	e = newEnv(t)
	hold = new(atomic.Bool)
	inSync, held := make(chan struct{}), make(chan struct{})
	release = sync.OnceFunc(func() { close(held) })
	e.fs = vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && hold.CompareAndSwap(true, false) {
			close(inSync)
			<-held
		}
		return nil
	}))
	l = e.open(cfg)
	t.Cleanup(func() {
		release()
		_ = l.Close()
	})
	return e, l, hold, inSync, release
}

// TestMaintainFlushCutShortIsDueAgain: a flush.ms flush of Maintain's
// whose ctx ends while it waits for another caller's fsync, one that
// does not cover the records, leaves them unsynced; the next Maintain
// flushes them. The old code counted the flush as done when it made it
// due (before the fsync), and the next one was due a whole FlushInterval
// later.
func TestMaintainFlushCutShortIsDueAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, l, hold, inSync, release := heldSyncLog(t)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a")) // offset 0
		hold.Store(true)
		flushed := make(chan error, 1)
		go func() { flushed <- l.Flush(context.Background()) }()
		<-inSync                                              // an fsync up to offset 1 is under way, held
		appendOK(t, l, valueBatch(t, 1_700_000_000_001, "b")) // offset 1: not due
		e.clock.Advance(time.Second)                          // flush.ms has passed

		ctx, cancel := context.WithCancel(t.Context())
		maintained := make(chan error, 1)
		go func() { maintained <- l.Maintain(ctx) }()
		synctest.Wait() // its flush waits for the fsync under way
		cancel()
		require.ErrorIs(t, <-maintained, context.Canceled)
		release()
		require.NoError(t, <-flushed)
		require.EqualValues(t, 1, l.DurableOffset(), "the held fsync covered offset 0 only")

		require.NoError(t, l.Maintain(t.Context())) // the clock has not moved
		require.EqualValues(t, 2, l.DurableOffset(), "the flush cut short is due again")
	})
}

// TestMaintainFlushCutShortOwnFsync: a flush.ms flush of Maintain's whose
// ctx ends while the fsync it started runs leaves that fsync running on
// a goroutine of its own, which syncs the records: the next Maintain has
// no flush due (the next is a FlushInterval after the one cut short).
func TestMaintainFlushCutShortOwnFsync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e, l, hold, inSync, release := heldSyncLog(t)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a", "b")) // offsets 0, 1
		e.clock.Advance(time.Second)                               // flush.ms has passed

		hold.Store(true)
		ctx, cancel := context.WithCancel(t.Context())
		maintained := make(chan error, 1)
		go func() { maintained <- l.Maintain(ctx) }()
		<-inSync
		synctest.Wait() // Maintain waits for the fsync it started
		cancel()
		require.ErrorIs(t, <-maintained, context.Canceled)
		release()
		synctest.Wait() // the fsync ends on its own goroutine
		require.EqualValues(t, 2, l.DurableOffset())

		appendOK(t, l, valueBatch(t, 1_700_000_000_002, "c")) // offset 2: not due
		require.NoError(t, l.Maintain(t.Context()))
		require.EqualValues(t, 2, l.DurableOffset(), "no flush due: the one cut short synced its records")
	})
}
