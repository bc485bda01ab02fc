package log

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCallsEndBehindAStuckWriteWithALinePending: an append
// that rolls logs "rolled segment" under the writer lock, then hangs in
// its write to the new segment, the line still queued. The partition's
// calls that do not need the writer lock (a read) go on meanwhile, and
// one that needs it returns with its ctx's error once that ends, as
// they do with no Logger (TestLogCallsHeedTheirCtxBehindAStuckWrite):
// the line they find queued as they leave is no reason to wait for the
// lock. Once the write goes on, the line is handed on, once.
func TestCallsEndBehindAStuckWriteWithALinePending(t *testing.T) {
	e := newEnv(t)
	hang, fs := newHangingWrite(t, e.fs, ".log")
	var rolls atomic.Int32
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "rolled segment" {
			rolls.Add(1)
		}
	}))
	l, err := Open(e.dir, Config{SegmentBytes: 100}, Options{FS: fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p := NewPartition("t", 0, l)
	defer p.Close()
	defer hang.unstick() // before the Close, which waits for the stuck write: a failed assertion frees it
	_, err = p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	hang.arm()
	stuck := make(chan error, 1)
	go func() { // rolls, logs, then hangs in its write
		_, err := p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		stuck <- err
	}()
	testkit.AwaitHold(t, hang.entered, stuck, "the Append of b")
	require.True(t, l.queue.Pending(), "the roll's line is queued")

	// bounded runs call, failing the test if it waits for the stuck
	// write (which it then lets go on).
	bounded := func(name string, call func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			return err
		case <-time.After(testkit.HangGuard):
			hang.unstick()
			<-done
			t.Fatalf("%s waited for the stuck write: it found a line queued as it left the partition", name)
			return nil
		}
	}
	err = bounded("ReadInto", func() error {
		_, err := p.ReadInto(context.Background(), nil, 0, 1<<20, p.HighWatermark())
		return err
	})
	require.NoError(t, err)
	err = bounded("Append with a deadline", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_, err := p.Append(ctx, valueBatch(t, 1_700_000_000_000, "lost"), AppendOptions{})
		return err
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// A Compact (of a log that does not compact: it returns at once)
	// finds the line queued as it releases the compaction's lock
	// (exitOwn), and leaves it to the writer lock's holder too. (The mutant: exitOwn
	// taking mu with Lock, not TryLock.)
	err = bounded("Compact", func() error {
		_, err := l.Compact(context.Background())
		return err
	})
	require.NoError(t, err)
	require.Zero(t, rolls.Load(), "line handed on while the append that logged it holds the writer lock")
	hang.unstick()
	require.NoError(t, testkit.Await(t, stuck, "Append's answer"))
	require.EqualValues(t, 1, rolls.Load(), "roll lines handed on")
	require.False(t, l.queue.Pending())
	require.EqualValues(t, 2, l.LogEndOffset())
}

// TestLinesUnderChurn: appends through the Partition (each
// rolls: a line), reads, HoldLines with a Maintain under them, and a
// handler that appends too (its first lines), all at once, in seeded
// random order: every roll's line is handed on once, in the order of
// the rolls, none is left queued, and nothing deadlocks. Run with -race
// it also checks that the queue is touched under the writer lock only.
func TestLinesUnderChurn(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_LINES_CHURN", 8, 2, func(t *testing.T, seed uint64) {
		e := newEnv(t)
		var p atomic.Pointer[Partition]
		var mu sync.Mutex // the handler's
		var bases []int64
		var fromHandler atomic.Int32
		logger := slog.New(testkit.LineFunc(func(r slog.Record) {
			if r.Message != "rolled segment" {
				return
			}
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "base" {
					mu.Lock()
					bases = append(bases, a.Value.Int64())
					mu.Unlock()
				}
				return true
			})
			if fromHandler.Add(1) <= 10 {
				if _, err := p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "h"), AppendOptions{}); err != nil {
					t.Errorf("append from the handler: %v", err)
				}
			}
		}))
		l, err := Open(e.dir, Config{SegmentBytes: 100}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
		require.NoError(t, err)
		p.Store(NewPartition("t", 0, l))
		defer p.Load().Close()
		rng := rand.New(rand.NewPCG(seed, 35))
		const workers, ops = 4, 60
		plans := make([][]int, workers)
		for w := range plans {
			for range ops {
				plans[w] = append(plans[w], rng.IntN(4))
			}
		}
		var appended atomic.Int64
		done := make(chan struct{})
		go func() {
			defer close(done)
			var wg sync.WaitGroup
			for _, plan := range plans {
				wg.Go(func() {
					for _, op := range plan {
						switch op {
						case 0, 1:
							if _, err := p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "v"), AppendOptions{}); err != nil {
								t.Errorf("append: %v", err)
							}
							appended.Add(1)
						case 2:
							if _, err := p.Load().ReadInto(context.Background(), nil, 0, 1<<10, p.Load().HighWatermark()); err != nil {
								t.Errorf("read: %v", err)
							}
						case 3:
							release := l.HoldLines()
							if err := l.Maintain(context.Background()); err != nil {
								t.Errorf("maintain: %v", err)
							}
							release()
						}
					}
				})
			}
			wg.Wait()
		}()
		select {
		case <-done:
		case <-time.After(testkit.HangGuard):
			t.Fatal("deadlock: the calls did not return")
		}
		require.False(t, l.queue.Pending(), "a line left queued with no call under way")
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, bases, l.Segments()-1, "one line a roll")
		for i := 1; i < len(bases); i++ {
			require.Less(t, bases[i-1], bases[i], "roll lines out of order or twice: %v", bases)
		}
		require.Equal(t, appended.Load()+int64(min(fromHandler.Load(), 10)), l.LogEndOffset())
	})
}

// TestHandingOnEndsBehindAStuckWrite: the call that hands lines
// on (here the append that rolled, its own line) looks for more once
// its handler returned. If another append has meanwhile taken the
// writer lock and hangs in its write, that look must not wait for the
// disk: the append that rolled has done its work, and returns.
func TestHandingOnEndsBehindAStuckWrite(t *testing.T) {
	e := newEnv(t)
	hang, fs := newHangingWrite(t, e.fs, ".log")
	var p atomic.Pointer[Partition]
	var rolled atomic.Bool
	stuck := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "rolled segment" || rolled.Swap(true) {
			return
		}
		hang.arm()
		go func() { // takes the writer lock, and hangs in its write
			_, err := p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "stuck"), AppendOptions{})
			stuck <- err
		}()
		<-hang.entered
	}))
	l, err := Open(e.dir, Config{SegmentBytes: 100}, Options{FS: fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p.Store(NewPartition("t", 0, l))
	defer p.Load().Close()
	defer hang.unstick() // before the Close, which waits for the stuck write: a failed assertion frees it
	_, err = p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	returned := make(chan error, 1)
	go func() {
		_, err := p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		returned <- err
	}()
	select {
	case err := <-returned:
		require.NoError(t, err)
	case <-time.After(testkit.HangGuard):
		hang.unstick()
		t.Fatal("the append that rolled, its line handed on, waited for another append stuck in its write")
	}
	require.True(t, rolled.Load())
	hang.unstick()
	require.NoError(t, testkit.Await(t, stuck, "Append's answer"))
	require.EqualValues(t, 3, l.LogEndOffset())
}

// TestLogHandlerGrid: Options.Logger says a handler may append
// to the Log or Partition whose line it is, or close the Log. For each
// kind of line a log's call makes (a roll by a Partition's Append and by
// Roll, retention by ApplyRetention, Maintain and a Partition's
// DeleteRecordsBefore, compaction by Compact and Maintain, expired
// producer ids, a write or an fsync that failed), a handler that does
// each of those from inside the handler returns, and so does the call
// that logged the line (each wait bounded at testkit.HangGuard); under a HoldLines
// too, whose release hands the line on.
func TestLogHandlerGrid(t *testing.T) {
	type scenario struct {
		line    string
		cfg     Config
		setup   func(t *testing.T, l *Log, clock *fakeClock)
		provoke func(l *Log, p *Partition) error
		// failing: the append from the handler may fail with
		// ErrLogFenced (the log is fenced), and the call too.
		failing bool
	}
	ctx := context.Background()
	v := func(s string) []byte { return valueBatch(t, 1_700_000_000_000, s) }
	three := func(t *testing.T, l *Log, _ *fakeClock) {
		appendOK(t, l, keyedProducerBatch(t, 0, "k"))
		appendOK(t, l, keyedProducerBatch(t, 1, "k"))
		appendOK(t, l, keyedProducerBatch(t, 2, "k"))
	}
	scenarios := map[string]scenario{
		"roll by Partition.Append": {line: "rolled segment", cfg: Config{SegmentBytes: 100},
			setup: func(t *testing.T, l *Log, _ *fakeClock) { appendOK(t, l, v("a")) },
			provoke: func(_ *Log, p *Partition) error {
				_, err := p.Append(ctx, v("b"), AppendOptions{})
				return err
			}},
		"roll by Roll": {line: "rolled segment", cfg: Config{SegmentBytes: 100},
			setup:   func(t *testing.T, l *Log, _ *fakeClock) { appendOK(t, l, v("a")) },
			provoke: func(l *Log, _ *Partition) error { return l.Roll() }},
		"retention by ApplyRetention": {line: "deleting segment", cfg: Config{SegmentBytes: 100, RetentionBytes: 1},
			setup: three, provoke: func(l *Log, _ *Partition) error { _, err := l.ApplyRetention(ctx); return err }},
		"retention by Maintain": {line: "deleting segment", cfg: Config{SegmentBytes: 100, RetentionBytes: 1},
			setup: three, provoke: func(l *Log, _ *Partition) error { return l.Maintain(ctx) }},
		"DeleteRecordsBefore by the Partition": {line: "deleting segment", cfg: Config{SegmentBytes: 100},
			setup: three, provoke: func(l *Log, p *Partition) error {
				_, err := p.DeleteRecordsBefore(ctx, l.LogEndOffset())
				return err
			}},
		"compaction by Compact": {line: "compacted", cfg: Config{SegmentBytes: 100, CleanupPolicy: Compact},
			setup: three, provoke: func(l *Log, _ *Partition) error { _, err := l.Compact(ctx); return err }},
		"compaction by Maintain": {line: "compacted", cfg: Config{SegmentBytes: 100, CleanupPolicy: Compact, MinCleanableDirtyRatio: -1},
			setup: three, provoke: func(l *Log, _ *Partition) error { return l.Maintain(ctx) }},
		"producer ids expired": {line: "producer ids expired", cfg: Config{},
			setup: func(t *testing.T, l *Log, clock *fakeClock) {
				appendOK(t, l, keyedProducerBatch(t, 0, "k"))
				clock.Advance(2 * time.Hour)
			},
			provoke: func(l *Log, _ *Partition) error { return l.Maintain(ctx) }},
		"failed write": {line: "log fenced", cfg: Config{}, failing: true,
			provoke: func(_ *Log, p *Partition) error {
				_, err := p.Append(ctx, v("fails"), AppendOptions{})
				return err
			}},
		"failed fsync": {line: "log fenced", cfg: Config{Sync: SyncAlways}, failing: true,
			provoke: func(_ *Log, p *Partition) error {
				_, err := p.Append(ctx, v("fails"), AppendOptions{})
				return err
			}},
	}
	actions := map[string]func(l *Log, p *Partition) error{
		"Log.Append": func(l *Log, _ *Partition) error {
			_, err := l.Append(ctx, v("from the handler"), AppendOptions{})
			return err
		},
		"Partition.Append": func(_ *Log, p *Partition) error {
			_, err := p.Append(ctx, v("from the handler"), AppendOptions{})
			return err
		},
		"Log.Close":       func(l *Log, _ *Partition) error { return l.Close() },
		"Partition.Close": func(_ *Log, p *Partition) error { return p.Close() },
	}
	for name, sc := range scenarios {
		for aname, action := range actions {
			for _, hold := range []bool{false, true} {
				sub := name + "/" + aname
				if hold {
					sub += "/HoldLines"
				}
				t.Run(sub, func(t *testing.T) {
					var failWrite, failSync atomic.Bool
					fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
						if op == vfs.OpWrite && failWrite.Load() && strings.HasSuffix(name, ".log") ||
							op == vfs.OpSync && failSync.Load() && strings.HasSuffix(name, ".log") {
							return vfs.ErrInjected
						}
						return nil
					}))
					clock := newClock()
					var l atomic.Pointer[Log]
					var p atomic.Pointer[Partition]
					var armed, seen, returned atomic.Bool
					var actionErr atomic.Pointer[error]
					logger := slog.New(testkit.LineFunc(func(r slog.Record) {
						if !armed.Load() || r.Message != sc.line || seen.Swap(true) {
							return
						}
						done := make(chan error, 1)
						go func() { done <- action(l.Load(), p.Load()) }()
						select {
						case err := <-done:
							returned.Store(true)
							actionErr.Store(&err)
						case <-time.After(testkit.HangGuard):
						}
					}))
					opened, err := Open("/d/t-0", sc.cfg, Options{FS: fs, Clock: clock, Logger: logger, ProducerExpiration: time.Hour})
					require.NoError(t, err)
					l.Store(opened)
					p.Store(NewPartition("t", 0, opened))
					defer p.Load().Close()
					if sc.setup != nil {
						sc.setup(t, opened, clock)
					}
					if name == "failed write" {
						failWrite.Store(true)
					}
					if name == "failed fsync" {
						failSync.Store(true)
					}
					armed.Store(true)
					release := func() {}
					if hold {
						release = opened.HoldLines()
					}
					called := make(chan error, 1)
					go func() { called <- sc.provoke(opened, p.Load()) }()
					var callErr error
					select {
					case callErr = <-called:
					case <-time.After(testkit.HangGuard):
						t.Fatalf("the call that logged %q did not return", sc.line)
					}
					require.Equal(t, !hold, seen.Load(), "line %q handed on before the release (the call: %v)", sc.line, callErr)
					release()
					require.True(t, seen.Load(), "no %q line (the call: %v)", sc.line, callErr)
					require.True(t, returned.Load(), "%s from the handler of %q blocked", aname, sc.line)
					if !sc.failing && !strings.HasSuffix(aname, "Close") {
						require.NoError(t, callErr)
					}
					err = *actionErr.Load()
					switch {
					case strings.HasSuffix(aname, "Close"):
						if !sc.failing {
							require.NoError(t, err)
						}
					case sc.failing:
						if err != nil {
							require.ErrorIs(t, err, ErrLogFenced)
						}
					default:
						require.NoError(t, err, "%s from the handler of %q", aname, sc.line)
					}
				})
			}
		}
	}
}

// TestLinesWaitForTheLastHoldLines: with two HoldLines
// under way on one log (the broker's maintenance and an admin call that
// closes the log, say), the release of the first hands on nothing: the
// lines logged meanwhile wait for the release of the last, as
// HoldLines's doc says, and are handed on then, once each.
func TestLinesWaitForTheLastHoldLines(t *testing.T) {
	e := newEnv(t)
	var rolls atomic.Int32
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "rolled segment" {
			rolls.Add(1)
		}
	}))
	l, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p := NewPartition("t", 0, l)
	defer p.Close()
	_, err = p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)

	first, second := l.HoldLines(), l.HoldLines()
	require.NoError(t, l.Roll())
	_, err = p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Roll())
	require.Zero(t, rolls.Load(), "a line handed on while both HoldLines are under way")
	first()
	require.Zero(t, rolls.Load(), "a line handed on by the release of the first HoldLines, while the second is under way")
	second()
	require.EqualValues(t, 2, rolls.Load(), "roll lines handed on by the last release")
	require.False(t, l.queue.Pending())
}

// TestHandingOnStopsAtAHoldLines: a goroutine handing a
// line on (an append's roll line, its handler slow) when a HoldLines
// begins does not go on to hand on the lines logged under the HoldLines
// once its handler returns: they wait for the release, as HoldLines's
// doc says (its caller holds a lock the handler may wait for), and are
// handed on then, once each, in order.
func TestHandingOnStopsAtAHoldLines(t *testing.T) {
	e := newEnv(t)
	inHandler, unblock := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var bases []int64
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "rolled segment" {
			return
		}
		mu.Lock()
		first := len(bases) == 0
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "base" {
				bases = append(bases, a.Value.Int64())
			}
			return true
		})
		mu.Unlock()
		if first {
			close(inHandler)
			<-unblock
		}
	}))
	l, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p := NewPartition("t", 0, l)
	defer p.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(bases) }
	_, err = p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- l.Roll() }() // hands its line on, and blocks in the handler
	select {
	case <-inHandler:
	case <-time.After(testkit.HangGuard):
		t.Fatal("the roll's line was not handed on")
	}
	release := l.HoldLines()
	_, err = p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
	require.NoError(t, err)
	require.NoError(t, l.Roll()) // left to the goroutine handing lines on
	close(unblock)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(testkit.HangGuard):
		t.Fatal("the goroutine handing lines on did not return")
	}
	require.Equal(t, 1, count(), "a line logged under a HoldLines handed on before its release")
	release()
	require.Equal(t, []int64{1, 2}, bases, "roll lines handed on once each, in order")
	require.False(t, l.queue.Pending())
}
