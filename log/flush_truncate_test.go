package log

import (
	"context"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A Flush that reads the log end while a TruncateTo is under way — begun,
// the log end not yet lowered — flushes what the log holds once the cut
// is done, and succeeds. It compared the truncations begun before and
// after its fsync, and TruncateTo counts itself begun long before it
// lowers the log end: Flush then found the log end below its target with
// no truncation counted since, and failed with ErrOffsetOutOfRange
// ("offsets below 19 were truncated to 17 before they were fsynced"), as
// did Maintain, which flushes (TestConcurrentStressOS found it, 2 seeds of
// 100 under -race; this test fails on that code).
func TestFlushOvertakenByTruncateTo(t *testing.T) {
	l, err := Open("/p", Config{Sync: SyncNever}, Options{FS: vfs.NewMem()})
	require.NoError(t, err)
	defer l.Close()
	for i := range 4 {
		appendOK(t, l, valueBatch(t, int64(i), "v"))
	}
	flushed := make(chan error, 1)
	testHookTruncateStores = func(l *Log) {
		go func() { flushed <- l.Flush(context.Background()) }()
		// Until Flush has read the log end and waits for the fsync it
		// runs (which needs the log's lock, held here).
		for {
			l.syncMu.Lock()
			syncing := l.sync != nil
			l.syncMu.Unlock()
			if syncing {
				return
			}
			runtime.Gosched()
		}
	}
	defer func() { testHookTruncateStores = nil }()
	_, err = l.TruncateTo(2)
	require.NoError(t, err)
	require.NoError(t, testkit.Await(t, flushed, "Flush's answer"))
	require.Equal(t, Offsets{Start: 0, Durable: 2, End: 2}, l.Offsets())
}

// TestFlushBehindAStuckTruncationEndsWithItsCtx: a Flush that read the
// log end before a TruncateTo lowered it finds its offsets gone, and
// waits for the truncation to finish before it fsyncs what the log holds
// after it. The truncation here hangs writing its recovery-point
// checkpoint, on a disk that hangs, holding the writer lock: the Flush
// returns its ctx's error once its ctx ends, as a read's wait for a
// truncation does (TestPartitionReadBehindAStuckTruncationEndsWithItsCtx).
// Before, Flush waited for the truncation without its ctx, for good.
func TestFlushBehindAStuckTruncationEndsWithItsCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		l, release, truncated := truncationStuckBehindFlush(t, e, Config{Sync: SyncNever})
		ctx, cancel := context.WithCancel(context.Background())
		flushed := make(chan error, 1)
		go func() { flushed <- l.Flush(ctx) }()
		synctest.Wait() // Flush waits for the truncation
		cancel()
		require.ErrorIs(t, <-flushed, context.Canceled)

		release()
		require.NoError(t, <-truncated)
		require.NoError(t, l.Flush(context.Background()))
		require.Equal(t, Offsets{Start: 0, Durable: 1, End: 1}, l.Offsets())
	})
}

// TestMaintainsFlushBehindAStuckTruncationOwesNoFlushPastItsCut: the
// flush.ms flush of a Maintain that waited behind a truncation stuck
// writing its recovery point, and gave up with its ctx, is owed again
// (flushOwed) only up to the log end the truncation left: the records
// appended after the cut are no failed flush's, and flush.ms alone makes
// them due, as TruncateTo's lowering of flushOwed says. Before, the
// flush was owed up to the log end it had read before the cut (the
// truncation had lowered flushOwed already), and the next Maintain, well
// before flush.ms, fsynced the records appended since.
func TestMaintainsFlushBehindAStuckTruncationOwesNoFlushPastItsCut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		l, release, truncated := truncationStuckBehindFlush(t, e, Config{Sync: SyncPeriodic, FlushInterval: time.Hour})
		e.clock.Advance(time.Hour) // flush.ms due
		ctx, cancel := context.WithCancel(context.Background())
		maintained := make(chan error, 1)
		go func() { maintained <- l.Maintain(ctx) }()
		synctest.Wait() // Maintain's flush waits for the truncation
		cancel()
		require.ErrorIs(t, <-maintained, context.Canceled)
		release()
		require.NoError(t, <-truncated)

		appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "e"))
		require.Equal(t, Offsets{Start: 0, Durable: 1, End: 2}, l.Offsets())
		require.NoError(t, l.Maintain(context.Background()))
		require.Equal(t, Offsets{Start: 0, Durable: 1, End: 2}, l.Offsets(), "flush.ms has not passed since the last flush")
	})
}

// truncationStuckBehindFlush opens a log with cfg on e whose recovery
// point is its end, 3 (three batches, closed, opened again), appends a
// fourth (durable 3, end 4), and sets testHookFlushTarget so that the
// next Flush, once it has read the log end, starts TruncateTo(1) and
// goes on once the truncation has lowered the log end and hangs writing
// the recovery point, holding the writer lock, until release is called.
// truncated gets the truncation's error. The log is closed at the
// test's cleanup.
func truncationStuckBehindFlush(t *testing.T, e *env, cfg Config) (l *Log, release func(), truncated <-chan error) {
	t.Helper()
	var armed atomic.Bool
	entered, released := make(chan struct{}), make(chan struct{})
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.Contains(name, recoveryPointFile) && armed.CompareAndSwap(true, false) {
			close(entered)
			<-released
		}
		return nil
	}))
	l = e.open(cfg)
	for _, v := range []string{"a", "b", "c"} {
		appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), v))
	}
	require.NoError(t, l.Close())
	l = e.open(cfg) // its recovery point is the log end, 3
	t.Cleanup(func() { _ = l.Close() })
	appendOK(t, l, valueBatch(t, e.clock.Now().UnixMilli(), "d")) // not synced: durable 3, end 4

	cut := make(chan error, 1)
	testHookFlushTarget = func(l *Log) {
		testHookFlushTarget = nil
		armed.Store(true)
		go func() {
			_, err := l.TruncateTo(1) // lowers the log end, then hangs writing the recovery point
			cut <- err
		}()
		<-entered
	}
	t.Cleanup(func() { testHookFlushTarget = nil })
	return l, func() { close(released) }, cut
}
