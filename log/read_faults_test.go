package log

import (
	"context"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// openReadFaultLog opens a log (SyncAlways) on a MemFS whose every
// operation first goes to *inj when set.
func openReadFaultLog(t *testing.T, inj *atomic.Pointer[func(op vfs.Op, name string) error]) (*Log, *env) {
	t.Helper()
	e := newEnv(t)
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if f := inj.Load(); f != nil {
			return (*f)(op, name)
		}
		return nil
	}))
	return e.open(Config{Sync: SyncAlways, RetentionTime: -1}), e
}

// truncateOnEveryRead makes each read of a segment's .log (by the
// test's reader) start a truncation of the log by one record in another
// goroutine, and wait until the truncation has begun (counted in
// l.truncations) before the read goes on; the truncation's own reads, and
// the reader's while one is under way, start none (l must have been
// reopened since its last append: its truncations then reload no producer
// state, and read nothing after testHookTruncateStores). It returns how many it
// started, and a func that waits for the last to end.
func truncateOnEveryRead(t *testing.T, l *Log, inj *atomic.Pointer[func(op vfs.Op, name string) error]) (*atomic.Int32, func()) {
	var busy atomic.Bool
	var started atomic.Int32
	done := make(chan struct{}, 100)
	testHookTruncateStores = func(*Log) { busy.Store(false) } // past its reads
	t.Cleanup(func() { testHookTruncateStores = nil })
	f := func(op vfs.Op, name string) error {
		if op != vfs.OpRead || !strings.HasSuffix(name, segment.LogSuffix) || !busy.CompareAndSwap(false, true) {
			return nil
		}
		before := l.truncations.Load()
		started.Add(1)
		go func() {
			defer func() { done <- struct{}{} }()
			_, _ = l.TruncateTo(l.LogEndOffset() - 1)
		}()
		deadline := time.Now().Add(testkit.HangGuard)
		for l.truncations.Load() == before {
			if time.Now().After(deadline) {
				panic("the truncation did not begin")
			}
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	inj.Store(&f)
	return &started, func() {
		inj.Store(nil)
		for range started.Load() {
			select {
			case <-done:
			case <-time.After(testkit.HangGuard):
				t.Fatal("a truncation did not end")
			}
		}
	}
}

// TestReadTruncatedEveryAttempt: a read that truncations keep
// overtaking, on every attempt (those with the segments pinned too),
// gives up with ErrOffsetOutOfRange, as Read's doc says, after a bounded
// number of attempts.
func TestReadTruncatedEveryAttempt(t *testing.T) {
	var inj atomic.Pointer[func(op vfs.Op, name string) error]
	l, e := openReadFaultLog(t, &inj)
	for range 20 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "v"))
	}
	require.NoError(t, l.Close())
	l = e.open(Config{Sync: SyncAlways, RetentionTime: -1})
	defer l.Close()
	started, wait := truncateOnEveryRead(t, l, &inj)
	_, err := l.Read(0, 1<<20, math.MaxInt64)
	wait()
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.Contains(t, err.Error(), "truncations kept cutting the log under the read")
	require.GreaterOrEqual(t, started.Load(), int32(optimisticSearches+pinnedSearches))
	require.EqualValues(t, 20-started.Load(), l.LogEndOffset())
	requireWhole(t, l)
}

// TestSearchTruncatedEveryAttempt: as
// TestReadTruncatedEveryAttempt, for a search by time
// (searchTime): ErrOffsetOutOfRange after a bounded number of attempts.
func TestSearchTruncatedEveryAttempt(t *testing.T) {
	var inj atomic.Pointer[func(op vfs.Op, name string) error]
	l, e := openReadFaultLog(t, &inj)
	for i := range 100 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	require.NoError(t, l.Close())
	l = e.open(Config{Sync: SyncAlways, RetentionTime: -1})
	defer l.Close()
	started, wait := truncateOnEveryRead(t, l, &inj)
	_, _, err := l.OffsetForTime(1_700_000_000_000) // offset 0's: no truncation here cuts it
	wait()
	require.ErrorIs(t, err, ErrOffsetOutOfRange)
	require.Contains(t, err.Error(), "the segments kept changing under the search")
	require.GreaterOrEqual(t, started.Load(), int32(optimisticSearches+pinnedSearches))
}

// failReads makes every read of a file whose name ends in suffix
// fail while on is set.
func failReads(inj *atomic.Pointer[func(op vfs.Op, name string) error], suffix string, on *atomic.Bool) {
	f := func(op vfs.Op, name string) error {
		if on.Load() && op == vfs.OpRead && strings.HasSuffix(name, suffix) {
			return vfs.ErrInjected
		}
		return nil
	}
	inj.Store(&f)
}

// TestTimeSearchReadFails: a read error of a search by time (not
// a segment removed or cut under it) is the search's error, at once.
func TestTimeSearchReadFails(t *testing.T) {
	var inj atomic.Pointer[func(op vfs.Op, name string) error]
	l, _ := openReadFaultLog(t, &inj)
	defer l.Close()
	for i := range 4 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
	}
	var on atomic.Bool
	failReads(&inj, segment.LogSuffix, &on)
	on.Store(true)
	_, _, err := l.OffsetForTime(1_700_000_000_002)
	require.ErrorIs(t, err, vfs.ErrInjected)
	// Bounded by an offset inside the active segment, the largest
	// timestamp below it is read from the segment.
	_, _, err = l.OffsetOfMaxTimestampBelow(context.Background(), 2)
	require.ErrorIs(t, err, vfs.ErrInjected)
	on.Store(false)
	off, ok, err := l.OffsetOfMaxTimestampBelow(context.Background(), 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.EqualValues(t, 1, off)
}

// TestSearchClosedMeanwhile: a search by time overtaken by a
// truncation, during which the log closed, returns ErrClosed (as
// OffsetForTime's doc says: also when the log closes during the call), not
// a stale answer nor an error of its segments'.
func TestSearchClosedMeanwhile(t *testing.T) {
	var inj atomic.Pointer[func(op vfs.Op, name string) error]
	l, _ := openReadFaultLog(t, &inj)
	for i := range 20 {
		appendOK(t, l, valueBatch(t, 1_700_000_000_000+int64(i), "v"))
		if i == 9 {
			require.NoError(t, l.Roll())
		}
	}
	seg0 := segment.FileName(0, segment.LogSuffix)
	var fired atomic.Bool
	done := make(chan error, 2)
	f := func(op vfs.Op, name string) error {
		if op != vfs.OpRead || !strings.HasSuffix(name, seg0) || !fired.CompareAndSwap(false, true) {
			return nil
		}
		before := l.truncations.Load()
		go func() {
			_, err := l.TruncateTo(15) // in segment 10, not the one read
			done <- err
		}()
		deadline := time.Now().Add(testkit.HangGuard)
		for l.truncations.Load() == before && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		go func() { done <- l.Close() }()
		for !l.closed.Load() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		return nil
	}
	inj.Store(&f)
	_, _, err := l.OffsetForTime(1_700_000_000_000)
	inj.Store(nil)
	require.True(t, fired.Load())
	require.ErrorIs(t, err, ErrClosed)
	for range 2 {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(testkit.HangGuard):
			t.Fatal("the truncation or the Close did not end")
		}
	}
}
