package log

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// reentrantLines is a Logger whose handler checks, for every line the
// log logs, that the line is handed on after the log's writer lock is
// released: it takes the lock (TryLock: the tests run one goroutine, so
// nothing else holds it), and, the first time it sees a message, appends
// to the log, as a handler that ships lines to the log's own partition
// would. The lines it saw are kept, so that a test can tell a line that
// was never handed on.
type reentrantLines struct {
	t     *testing.T
	l     atomic.Pointer[Log] // set once Open returned
	seen  []string
	fresh map[string]bool // messages appended for already
	// appendErr, if set, is what an append from the handler may fail
	// with (ErrLogFenced once the log is fenced); nil: it must succeed.
	appendErr error
}

func (h *reentrantLines) logger() *slog.Logger {
	h.fresh = map[string]bool{}
	return slog.New(testkit.LineFunc(h.line))
}

func (h *reentrantLines) line(r slog.Record) {
	h.seen = append(h.seen, r.Message)
	l := h.l.Load()
	if l == nil {
		return // at Open: nothing can append to the log yet
	}
	if !l.mu.TryLock() {
		h.t.Errorf("line %q handed on holding the log's writer lock", r.Message)
		return
	}
	l.unlock()
	if h.fresh[r.Message] {
		return
	}
	h.fresh[r.Message] = true
	_, err := l.Append(context.Background(), valueBatch(h.t, 1_700_000_000_000, "from "+r.Message), AppendOptions{})
	if h.appendErr == nil && err != nil || h.appendErr != nil && !errors.Is(err, h.appendErr) {
		h.t.Errorf("append from the handler of %q: %v", r.Message, err)
	}
}

// requireSeen fails unless msg was handed on since the last call.
func (h *reentrantLines) requireSeen(msg string) {
	h.t.Helper()
	require.Contains(h.t, h.seen, msg, "line never handed on")
	h.seen = h.seen[:0]
}

// TestLinesGoOutWithoutTheWriterLock: every kind of line the log
// logs (roll, retention, DeleteRecords, compaction, producer id expiry,
// fencing by a failed write and by a failed fsync, recovery at Open) is
// handed to the Logger's handler once the log's writer lock (mu) is
// released, before the call that logged returns, and the handler may
// append to the log. On the old code the handler's append to the log
// whose roll it was told of deadlocked (the root package's
// test of a broker Logger that produces to the rolling partition).
func TestLinesGoOutWithoutTheWriterLock(t *testing.T) {
	ctx := context.Background()
	var failWrite, failSync atomic.Bool
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && failWrite.Load() && strings.HasSuffix(name, ".log") ||
			op == vfs.OpSync && failSync.Load() && strings.HasSuffix(name, ".log") {
			return errors.New("injected")
		}
		return nil
	}))
	clock := newClock()
	h := &reentrantLines{t: t}
	cfg := Config{SegmentBytes: 100, CleanupPolicy: Compact | Delete}
	opts := Options{FS: fs, Clock: clock, Logger: h.logger(), ProducerExpiration: time.Hour}
	open := func() *Log {
		h.l.Store(nil)
		l, err := Open("/d/t-0", cfg, opts)
		require.NoError(t, err)
		h.l.Store(l)
		return l
	}
	l := open()
	h.requireSeen("log created")

	appendOK(t, l, keyedProducerBatch(t, 0, "k"))
	appendOK(t, l, keyedProducerBatch(t, 1, "k")) // rolls: the handler appends too
	h.requireSeen("rolled segment")
	require.NoError(t, l.Roll())
	h.requireSeen("rolled segment")

	res, err := l.Compact(ctx)
	require.NoError(t, err)
	require.NotZero(t, res.RecordsRemoved, "%+v", res)
	h.requireSeen("compacted")

	_, err = l.DeleteRecordsBefore(context.Background(), l.LogEndOffset()-1)
	require.NoError(t, err)
	h.requireSeen("deleting segment")

	clock.Advance(2 * time.Hour)
	require.NoError(t, l.Maintain(ctx))
	h.requireSeen("producer ids expired")

	require.NoError(t, l.Close())
	l = open()
	h.requireSeen("log opened")

	// fenceBy fences the log by an append under fault, and closes it.
	fenceBy := func(fault *atomic.Bool) {
		h.appendErr = ErrLogFenced
		fault.Store(true)
		_, err := l.Append(ctx, valueBatch(t, 1_700_000_000_000, "x"), AppendOptions{})
		require.ErrorIs(t, err, ErrLogFenced)
		h.requireSeen("log fenced")
		fault.Store(false)
		l.Close()
		h.appendErr = nil
	}
	fenceBy(&failWrite)

	// A fenced log's Open rewrites its tail, and says so.
	l = open()
	h.requireSeen("log opened")

	// A failed fsync fences the log outside its writer lock (syncOnce).
	cfg.Sync = SyncAlways
	l.Close()
	l = open()
	fenceBy(&failSync)
}

var directLine = regexp.MustCompile(`l\.logger\.(Debug|Info|Warn|Error|Log)`)

// TestEveryUnlockHandsLinesOn keeps the rule the lines of
// TestLinesGoOutWithoutTheWriterLock rest on, for the lines no
// test makes: the log logs only through lockedLog (a line logged without
// mu panics in a race build: see lockedlog), and releases mu only with
// unlock, which hands the queued lines on (a bare Unlock would leave them
// queued until another unlock, or for ever).
func TestEveryUnlockHandsLinesOn(t *testing.T) {
	names, err := filepath.Glob("*.go")
	require.NoError(t, err)
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		data, err := os.ReadFile(name)
		require.NoError(t, err)
		for i, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "l.mu.Unlock()") {
				t.Errorf("%s:%d: mu released without unlock: %s", name, i+1, strings.TrimSpace(line))
			}
			if directLine.MatchString(line) {
				t.Errorf("%s:%d: a line logged to the handler at once, not through lockedLog: %s", name, i+1, strings.TrimSpace(line))
			}
		}
	}
}

// TestHandlerMayCloseTheLog: the handler may close the Log whose
// line it is (Options.Logger); the append that rolled returns.
func TestHandlerMayCloseTheLog(t *testing.T) {
	e := newEnv(t)
	var opened *Log
	err, closeErr := callClosedOnLine(t, "rolled segment", func(logger *slog.Logger) *Log {
		var err error
		opened, err = Open(e.dir, Config{SegmentBytes: 100}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
		require.NoError(t, err)
		appendOK(t, opened, valueBatch(t, 1_700_000_000_000, "a"))
		return opened
	}, func(l *Log) error {
		_, err := l.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		return err
	}, "the append that rolled (the handler's Close waits for the log's lock)")
	require.NoError(t, err) // appended, then closed by the handler
	require.NoError(t, closeErr)
	_, err = opened.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "c"), AppendOptions{})
	require.ErrorIs(t, err, ErrClosed)
}

// TestHandlerPanicOrGoexitOnAnOpensLineClosesTheLog: a Logger's handler
// that panics, or ends the goroutine (t.FailNow), on a line of Open
// ("log opened": its lines go out as it returns) leaves the log it
// opened closed, cleanly, as a failed Open leaves nothing open: the
// caller never gets the log to close it. Before, the log was left open,
// unreachable, its files open (on the OS file system, until the
// collector closed them), and the next Open recovered it as after a
// crash (a broker's Open whose handler panicked so).
func TestHandlerPanicOrGoexitOnAnOpensLineClosesTheLog(t *testing.T) {
	for _, end := range []string{"panic", "Goexit"} {
		t.Run(end, func(t *testing.T) {
			e := newEnv(t)
			l := e.open(Config{})
			appendOK(t, l, valueBatch(t, 1, "a"))
			require.NoError(t, l.Close())

			var failNow func()
			logger := slog.New(testkit.LineFunc(func(r slog.Record) {
				if r.Message != "log opened" {
					return
				}
				if end == "panic" {
					panic("the handler panics")
				}
				failNow()
			}))
			returned := false
			rec := testkit.Record(t, func(tb testing.TB) {
				failNow = tb.FailNow
				defer func() { _ = recover() }()
				_, _ = Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
				returned = true
			})
			require.False(t, returned, "Open returned")
			require.Equal(t, end == "Goexit", rec.Failed())

			l = e.open(Config{})
			require.True(t, l.Recovery().Clean, "the log the handler's Open opened was closed")
			require.Equal(t, []string{"a"}, values(readAll(t, l, 0)))
			require.NoError(t, l.Close())
		})
	}
}

// TestHandlerPanicOnAFailedOpensLineLeavesTheDirectory: an Open that
// fails (here writing the reset of a cleaner checkpoint past the log
// end) and whose handler then panics on its line leaves the directory as
// the failure did: the log it did not open is not closed as an opened
// one would be (whose flush would meet the segments the failure closed,
// and write a sync-failed checkpoint).
func TestHandlerPanicOnAFailedOpensLineLeavesTheDirectory(t *testing.T) {
	e := newEnv(t)
	l := e.open(Config{})
	appendOK(t, l, valueBatch(t, 1, "a"))
	require.NoError(t, l.Close())
	require.NoError(t, writeOffset(e.fs, e.dir, cleanerFile, 100))
	before, err := e.fs.List(e.dir)
	require.NoError(t, err)

	fsys := vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if strings.Contains(name, cleanerFile) && (op == vfs.OpCreate || op == vfs.OpWrite) {
			return errors.New("no room")
		}
		return nil
	}))
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if strings.HasPrefix(r.Message, "cleaner checkpoint past the log end") {
			panic("the handler panics")
		}
	}))
	func() {
		defer func() { require.Equal(t, "the handler panics", recover()) }()
		_, _ = Open(e.dir, Config{}, Options{FS: fsys, Clock: e.clock, Logger: logger})
	}()
	after, err := e.fs.List(e.dir)
	require.NoError(t, err)
	require.Equal(t, before, after)
}

// TestHandlerMayAppendToThePartitionWhileAReopenWaits: a
// Partition call holds the partition's lock shared around the log's;
// the log's lines (here the roll of a Partition.Append) are handed on
// once it released it. On the old code they were handed on inside the
// call, under that lock: a handler appending to the partition then
// waited for the lock behind a Reopen (a config change) that waited for
// the call, which waited for the handler: the handler's append was still
// blocked after 10s.
func TestHandlerMayAppendToThePartitionWhileAReopenWaits(t *testing.T) {
	e := newEnv(t)
	cfg := Config{SegmentBytes: 100}
	var p atomic.Pointer[Partition]
	var rolled, returned, opened atomic.Bool
	reopened := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "rolled segment" || rolled.Swap(true) {
			return
		}
		pp := p.Load()
		go func() {
			reopened <- pp.Reopen(func() (*Log, error) {
				opened.Store(true)
				return Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock})
			})
		}()
		// Bounded as a hang guard: the Reopen's goroutine waits for the
		// partition's lock (the old code: the Append that rolled holds
		// it), or has it.
		require.Eventually(t, func() bool { return opened.Load() || reopenWaits() }, testkit.HangGuard, time.Millisecond)
		done := make(chan error, 1)
		go func() {
			_, err := pp.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "from the handler"), AppendOptions{})
			done <- err
		}()
		select {
		case err := <-done:
			returned.Store(true)
			require.NoError(t, err)
		case <-time.After(testkit.HangGuard):
		}
	}))
	l, err := Open(e.dir, cfg, Options{FS: e.fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p.Store(NewPartition("t", 0, l))
	t.Cleanup(func() { p.Load().Close() })
	_, err = p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	_, err = p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
	require.NoError(t, err)
	require.True(t, rolled.Load())
	require.True(t, returned.Load(), "the handler's Partition.Append blocked behind the waiting Reopen")
	require.NoError(t, testkit.Await(t, reopened, "Reopen's answer"))
	require.Equal(t, int64(3), p.Load().LogEndOffset())
}

// reopenWaits reports whether a goroutine waits in Partition.Reopen for
// the partition's lock (a holdLock: a semaphore.Weighted's Acquire),
// parked in Acquire's select, its waiter queued: one caught in Acquire
// on its way there is not yet in the lock's line, and the handler's
// Append would take the lock shared before it, as if nothing waited.
func reopenWaits() bool {
	return testkit.CountParked(testkit.Stacks(), testkit.Wait{State: "select", In: "semaphore.(*Weighted).Acquire",
		Under: []string{"log.(*Partition).Reopen"}}) > 0
}

// TestConcurrentLinesAllHandedOn: under appends from several
// goroutines at once through a Partition (so that some call always may
// hold the partition's lock), every roll's line is handed on once, by the
// time the appends returned, and a handler that appends too (its first
// lines) neither deadlocks nor loses lines. Run with -race, it also
// checks that the log's queue of lines is touched under its lock only.
func TestConcurrentLinesAllHandedOn(t *testing.T) {
	e := newEnv(t)
	var p atomic.Pointer[Partition]
	var lines, fromHandler atomic.Int64
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "rolled segment" {
			return
		}
		lines.Add(1)
		if fromHandler.Add(1) <= 5 {
			_, err := p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "from the handler"), AppendOptions{})
			require.NoError(t, err)
		}
	}))
	l, err := Open(e.dir, Config{SegmentBytes: 100}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p.Store(NewPartition("t", 0, l))
	t.Cleanup(func() { p.Load().Close() })
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				_, err := p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "v"), AppendOptions{})
				require.NoError(t, err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int64(l.Segments()-1), lines.Load(), "rolls against rolled-segment lines handed on")
	require.Equal(t, int64(4*50+5), l.LogEndOffset())
}

// TestHandlerMayCloseTheLogOnCompacted: Options.Logger says the
// handler may close the Log whose line it is; "compacted" is one of its
// lines (Compact, or Maintain's compaction).
func TestHandlerMayCloseTheLogOnCompacted(t *testing.T) {
	e := newEnv(t)
	_, err := callClosedOnLine(t, "compacted", func(logger *slog.Logger) *Log {
		l, err := Open(e.dir, Config{SegmentBytes: 100, CleanupPolicy: Compact}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
		require.NoError(t, err)
		appendOK(t, l, keyedProducerBatch(t, 0, "k"))
		appendOK(t, l, keyedProducerBatch(t, 1, "k"))
		require.NoError(t, l.Roll())
		return l
	}, func(l *Log) error {
		_, err := l.Compact(context.Background())
		return err
	}, "the Compact that logged \"compacted\" (the handler's Close waits for the compaction's lock, cleanMu)")
	require.NoError(t, err)
}

// TestHandlerMayCloseTheLogOnAFailedFsync: the "log fenced" line
// of an fsync that failed (SyncAlways) comes from the group commit's
// round (syncOnce); a handler that closes the Log on it must not wait
// for that round, which waits for the handler.
func TestHandlerMayCloseTheLogOnAFailedFsync(t *testing.T) {
	var failSync atomic.Bool
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && failSync.Load() && strings.HasSuffix(name, ".log") {
			return errors.New("injected")
		}
		return nil
	}))
	err, _ := callClosedOnLine(t, "log fenced", func(logger *slog.Logger) *Log {
		l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Clock: newClock(), Logger: logger})
		require.NoError(t, err)
		appendOK(t, l, valueBatch(t, 1_700_000_000_000, "a"))
		failSync.Store(true)
		return l
	}, func(l *Log) error {
		_, err := l.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		return err
	}, "the Append whose fsync failed (the handler's Close waits for the sync round the handler runs in)")
	require.ErrorIs(t, err, ErrLogFenced)
	// The log is fenced: its Close reports its failure or not, as it will.
}

// callClosedOnLine opens a log with open, given a Logger whose handler
// closes that log on its first line msg, and runs call on it: it
// returns call's error and the handler's Close's, and fails the test if
// call (what) has not returned within testkit.HangGuard, or the handler not closed
// the log by then.
func callClosedOnLine(t *testing.T, msg string, open func(*slog.Logger) *Log, call func(*Log) error, what string) (callErr, closeErr error) {
	t.Helper()
	var l atomic.Pointer[Log]
	var once sync.Once
	closed := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == msg {
			once.Do(func() { closed <- l.Load().Close() })
		}
	}))
	l.Store(open(logger))
	returned := make(chan error, 1)
	go func() { returned <- call(l.Load()) }()
	select {
	case callErr = <-returned:
	case <-time.After(testkit.HangGuard):
		t.Fatalf("%s did not return", what)
	}
	select {
	case closeErr = <-closed:
	case <-time.After(testkit.HangGuard):
		t.Fatalf("no %q line: the handler did not close the log", msg)
	}
	return callErr, closeErr
}

// TestHandlerMayCloseTheLogOnCloseLine: Options.Logger says a
// handler may close the Log whose line it is; a Close logs lines of its
// own ("producer-state snapshot not removed", when the prune after its
// snapshot cannot remove an older one), which must go out once Close has
// released the compaction's lock (cleanMu), which the handler's Close
// takes. Kills: close without its enterOwn/exitOwn (the lines handed on
// by its release of mu, cleanMu still held: the handler's Close waits for
// it).
func TestHandlerMayCloseTheLogOnCloseLine(t *testing.T) {
	var failRemove, closeOnLine atomic.Bool
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && failRemove.Load() && strings.HasSuffix(name, snapshotSuffix) {
			return errors.New("injected")
		}
		return nil
	}))
	var l atomic.Pointer[Log]
	var once sync.Once
	var lines atomic.Int32
	closed := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "producer-state snapshot not removed" {
			return
		}
		lines.Add(1)
		if closeOnLine.Load() {
			once.Do(func() { closed <- l.Load().Close() })
		}
	}))
	lg, err := Open("/d/t-0", Config{SegmentBytes: 100}, Options{FS: fs, Clock: newClock(), Logger: logger})
	require.NoError(t, err)
	l.Store(lg)
	appendEach(t, lg, 1_700_000_000_000, "a", "b", "c", "d")
	// The snapshots below the new log start offset are pruned, and stay
	// as their removal fails: the Close's prune tries again.
	failRemove.Store(true)
	_, err = lg.DeleteRecordsBefore(context.Background(), 3)
	require.NoError(t, err)
	require.NotZero(t, lines.Load(), "the prune's removals failed")
	require.Less(t, lg.snapshots[0], int64(3), "a snapshot below the log start offset is left")

	closeOnLine.Store(true)
	returned := make(chan error, 1)
	go func() { returned <- lg.Close() }()
	select {
	case err := <-returned:
		require.NoError(t, err, "a snapshot not removed is logged, not returned")
	case <-time.After(testkit.HangGuard):
		t.Fatal("the Close that logged \"producer-state snapshot not removed\" did not return (the handler's Close waits for the compaction's lock, cleanMu)")
	}
	select {
	case err := <-closed:
		require.NoError(t, err, "closed already: nothing to do")
	case <-time.After(testkit.HangGuard):
		t.Fatal("no line from Close's prune: the handler did not close the log")
	}
}

// TestHandlerMayAppendOnALineOfAPartitionLock: a line logged by
// a call to the log under a PartitionLock (a Roll of k.Log()) waits for
// the lock's Unlock, which hands it on once the partition's lock is
// released: a handler that appends to the partition then goes on, where
// handed on under the lock it would wait for the lock held by its own
// goroutine. Kills: Partition.lock without its enter (the line handed on
// by the Roll, under the lock); Partition.unlock calling leave before it
// releases mu.
func TestHandlerMayAppendOnALineOfAPartitionLock(t *testing.T) {
	e := newEnv(t)
	var p atomic.Pointer[Partition]
	var once sync.Once
	appended := make(chan error, 1)
	fromHandler := valueBatch(t, 1_700_000_000_000, "from the handler")
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "rolled segment" {
			return
		}
		once.Do(func() {
			_, err := p.Load().Append(context.Background(), fromHandler, AppendOptions{})
			appended <- err
		})
	}))
	l, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p.Store(NewPartition("t", 0, l))
	_, err = p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		k, err := p.Load().Lock(context.Background())
		if err != nil {
			done <- err
			return
		}
		err = k.Log().Roll()
		k.Unlock()
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(testkit.HangGuard):
		t.Fatal("the Roll under a PartitionLock, or its Unlock, did not return: its line was handed on under the partition's lock, to a handler that appends to the partition")
	}
	require.NoError(t, testkit.Await(t, appended, "Append's answer"), "the handler's append")
	require.EqualValues(t, 2, p.Load().LogEndOffset())
	require.NoError(t, p.Load().Close())
}

// TestZeroDurabilityHoldLines: the HoldLines of a zero
// Durability (nothing to wait for) costs nothing and its release does
// nothing. Kills: Durability.HoldLines without its nil log check (a nil
// pointer dereference).
func TestZeroDurabilityHoldLines(t *testing.T) {
	release := Durability{}.HoldLines()
	release()
	require.NoError(t, Durability{}.Wait(context.Background()))
}

// TestFencedLineSaysWhatToDo: the "log fenced" line (Error) says
// what happened and what to do about it: the log
// refuses writes until it is opened again, which a broker does not do on
// its own (an operator fixes the cause and reopens it). It said only what
// happened (dir=, err=).
func TestFencedLineSaysWhatToDo(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync} {
		t.Run(op.String(), func(t *testing.T) {
			var failing atomic.Bool
			fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(o vfs.Op, name string) error {
				if o == op && failing.Load() && strings.HasSuffix(name, ".log") {
					return vfs.ErrInjected
				}
				return nil
			}))
			lines := make(chan map[string]string, 1)
			logger := slog.New(testkit.LineFunc(func(r slog.Record) {
				if r.Message != "log fenced" {
					return
				}
				attrs := map[string]string{"level": r.Level.String()}
				r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
				select {
				case lines <- attrs:
				default: // logged once; a second would be another test's failure
				}
			}))
			l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Logger: logger})
			require.NoError(t, err)
			defer l.Close()
			failing.Store(true)
			_, err = l.Append(t.Context(), valueBatch(t, 1_700_000_000_000, "fails"), AppendOptions{})
			require.ErrorIs(t, err, ErrLogFenced)
			// The line of a failed fsync goes out once its round has
			// ended, maybe after the append returned (see syncOnce).
			var attrs map[string]string
			select {
			case attrs = <-lines:
			case <-time.After(testkit.HangGuard):
				t.Fatal(`no "log fenced" line`)
			}
			require.Equal(t, "ERROR", attrs["level"])
			require.Contains(t, attrs["err"], "injected")
			require.Contains(t, attrs["then"], "refused until the log is opened again")
			require.Contains(t, attrs["then"], "Close and Open")
		})
	}
}

// attr returns the value of key in line, a testkit.LineTally's, and whether it
// has one.
func attr(line, key string) (string, bool) {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v, true
		}
	}
	return "", false
}

// requireLinesInOrder checks the lines whose message is msg: each
// distinct, and, per log (the "log" attribute the test gives each log it
// opens), in increasing order of the number that key's attribute holds
// (a roll's base, a deleted segment's file): a log logs them in that
// order, and hands them on in the order logged (Options.Logger). It
// returns how many there were.
func requireLinesInOrder(t *testing.T, lines []string, msg, key string) int {
	t.Helper()
	seen := map[string]bool{}
	last := map[string]int64{}
	n := 0
	for _, line := range lines {
		if !strings.HasPrefix(line, msg+" ") {
			continue
		}
		n++
		require.False(t, seen[line], "line handed on twice: %s", line)
		seen[line] = true
		v, ok := attr(line, key)
		require.True(t, ok, "no %s in %s", key, line)
		if key == "segment" { // "segment <dir>/<base>.log [from, to) n bytes"
			v = strings.Fields(line[strings.Index(line, "segment=")+len("segment="):])[1]
		}
		at := ordKey(v)
		log, _ := attr(line, "log")
		if prev, ok := last[log]; ok {
			require.Less(t, prev, at, "%q lines of log %s out of the order logged: %s", msg, log, line)
		}
		last[log] = at
	}
	return n
}

// ordKey is the number in v's last path element (a base offset, or a
// segment's file name).
func ordKey(v string) int64 {
	v = v[strings.LastIndexAny(v, `/\`)+1:] // Windows's separator too
	v = strings.TrimSuffix(v, ".log")
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("no number in %q", v))
	}
	return n
}

// TestLinesEachHandedOnOnce: the lines a partition's log logs
// holding its lock (rolls, retention's deletions, producer ids, a
// fence, the reopen's Close and Open) are queued and handed on later,
// by whichever call releases the lock, by a partition call as it leaves,
// by a HoldLines's release, or by a group commit's round on the goroutine
// Options.Go starts (on a file system other than the bare memory one,
// for an append whose ctx may end). Whatever path a line takes, it is
// handed on once: once every call and goroutine has ended, the lines
// handed are the lines logged, none twice, and a log's rolls and
// deletions come in the order logged. The partition is reopened, and
// closed, while the appends, maintenance (under a HoldLines, as the
// broker's) and reads go on; in one case the fsyncs fail part way, once
// the reopens have stopped (the log is fenced).
func TestLinesEachHandedOnOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fence   bool // an fsync fails part way
		compact bool // a compacted topic: "compacted" lines
		discard bool // the partition is discarded (its topic deleted), not closed
	}{
		{name: "healthy"},
		{name: "an fsync fails", fence: true},
		{name: "compacted", compact: true},
		{name: "discarded", discard: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tally testkit.LineTally
			var failSync atomic.Bool
			fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, _ string) error {
				if op == vfs.OpSync && failSync.Load() {
					return errors.New("injected fsync failure")
				}
				return nil
			}))
			var rounds sync.WaitGroup
			opts := Options{FS: fs, Clock: newClock(), Logger: tally.Logger(), Go: func(f func()) {
				rounds.Add(1)
				go func() {
					defer rounds.Done()
					f()
				}()
			}}
			cfg := Config{SegmentBytes: 300, RetentionBytes: 900, RetentionTime: -1}
			if tc.compact {
				cfg = Config{SegmentBytes: 300, CleanupPolicy: Compact, MinCleanableDirtyRatio: 0.01}
			}
			const dir = "/data/t-0"
			var opened atomic.Int32 // tells each log's lines apart (see requireLinesInOrder)
			open := func() (*Log, error) {
				o := opts
				o.Logger = o.Logger.With("log", opened.Add(1))
				return Open(dir, cfg, o)
			}
			l, err := open()
			require.NoError(t, err)
			p := NewPartition("t", 0, l)

			loops := testkit.NewLoops(t)
			for w := range 3 {
				loops.Go(func(i int) {
					ctx, cancel := context.WithCancel(context.Background())
					if i%4 == 0 {
						cancel() // the round starts all the same, on a goroutine of its own
					}
					rec := kv{key: fmt.Appendf(nil, "k%d", i%5), value: fmt.Appendf(nil, "%d-%d", w, i), ts: 1_700_000_000_000}
					_, _ = p.Append(ctx, batchOf(t, compression.None, rec), AppendOptions{})
					cancel()
				})
			}
			loops.Go(func(int) { // the broker's maintenance: its lines held until it is done
				l, err := p.LogContext(context.Background())
				if err != nil {
					time.Sleep(time.Millisecond)
					return
				}
				release := l.HoldLines()
				_ = l.Maintain(context.Background())
				release()
			})
			loops.Go(func(int) {
				_, _ = p.ReadInto(context.Background(), nil, p.LogStartOffset(), 1<<16, p.HighWatermark())
			})
			var reopening sync.Mutex // held by a reopen: none under way once fsyncs fail

			loops.Go(func(int) { // a config change's reopen, its old log's lines held until it is done
				time.Sleep(2 * time.Millisecond)
				reopening.Lock()
				defer reopening.Unlock()
				if failSync.Load() {
					return // so that an append's fsync, not a reopen's (which logs no "log fenced"), fails
				}
				k, _ := p.Lock(context.Background())
				release := k.Log().HoldLines()
				_ = k.Reopen(open)
				k.Unlock()
				release()
			})
			// Under way for a while: a roll handed on (and a compaction),
			// not a fixed time, which -race may leave too short.
			busy := func() bool {
				return tally.Has("rolled segment") && (!tc.compact || tally.Has("compacted"))
			}
			for deadline := time.Now().Add(testkit.HangGuard); !busy() && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
			}
			if tc.fence {
				reopening.Lock()
				failSync.Store(true)
				reopening.Unlock()
				for deadline := time.Now().Add(testkit.HangGuard); !tally.Has("log fenced") && time.Now().Before(deadline); {
					time.Sleep(time.Millisecond)
				}
			}
			if tc.discard {
				_ = p.Discard() // while the calls go on
			} else {
				_ = p.Close() // while the calls go on (a fenced log's Close fails)
			}
			loops.Stop()
			rounds.Wait()
			lines := tally.RequireEach(t, "once every call and goroutine had ended")
			if testing.Verbose() {
				for _, l := range lines {
					t.Log(l)
				}
			}
			rolls := requireLinesInOrder(t, lines, "rolled segment", "base")
			require.NotZero(t, rolls, "no roll")
			requireLinesInOrder(t, lines, "deleting segment", "segment")
			if tc.compact {
				require.True(t, tally.Has("compacted"), "no compaction")
			}
			if tc.fence {
				require.Contains(t, strings.Join(lines, "\n"), "log fenced")
			}
			t.Logf("%d lines, %d rolls", len(lines), rolls)
		})
	}
}
