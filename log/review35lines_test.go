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

// TestReview35CallsEndBehindAStuckWriteWithALinePending: an append
// that rolls logs "rolled segment" under the writer lock, then hangs in
// its write to the new segment, the line still queued. The partition's
// calls that do not need the writer lock (a read) go on meanwhile, and
// one that needs it returns with its ctx's error once that ends, as
// they do with no Logger (TestReview34LogCallsHeedTheirCtxBehindAStuckWrite):
// the line they find queued as they leave is no reason to wait for the
// lock. Once the write goes on, the line is handed on, once.
func TestReview35CallsEndBehindAStuckWriteWithALinePending(t *testing.T) {
	var armed atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unstick := func() { releaseOnce.Do(func() { close(release) }) }
	defer unstick()
	e := newEnv(t)
	fs := vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	}))
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
	_, err = p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	armed.Store(true)
	stuck := make(chan error, 1)
	go func() { // rolls, logs, then hangs in its write
		_, err := p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "b"), AppendOptions{})
		stuck <- err
	}()
	<-entered
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
		case <-time.After(10 * time.Second):
			unstick()
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
	require.Zero(t, rolls.Load(), "line handed on while the append that logged it holds the writer lock")
	unstick()
	require.NoError(t, <-stuck)
	require.EqualValues(t, 1, rolls.Load(), "roll lines handed on")
	require.False(t, l.queue.Pending())
	require.EqualValues(t, 2, l.LogEndOffset())
}

// TestReview35LinesUnderChurn: appends through the Partition (each
// rolls: a line), reads, HoldLines with a Maintain under them, and a
// handler that appends too (its first lines), all at once, in seeded
// random order: every roll's line is handed on once, in the order of
// the rolls, none is left queued, and nothing deadlocks. Run with -race
// it also checks that the queue is touched under the writer lock only.
func TestReview35LinesUnderChurn(t *testing.T) {
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
		case <-time.After(10 * time.Second):
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

// TestReview35HandingOnEndsBehindAStuckWrite: the call that hands lines
// on (here the append that rolled, its own line) looks for more once
// its handler returned. If another append has meanwhile taken the
// writer lock and hangs in its write, that look must not wait for the
// disk: the append that rolled has done its work, and returns.
func TestReview35HandingOnEndsBehindAStuckWrite(t *testing.T) {
	var armed atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	var releaseOnce sync.Once
	unstick := func() { releaseOnce.Do(func() { close(release) }) }
	defer unstick()
	e := newEnv(t)
	fs := vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.HasSuffix(name, ".log") && armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	}))
	var p atomic.Pointer[Partition]
	var rolled atomic.Bool
	stuck := make(chan error, 1)
	logger := slog.New(testkit.LineFunc(func(r slog.Record) {
		if r.Message != "rolled segment" || rolled.Swap(true) {
			return
		}
		armed.Store(true)
		go func() { // takes the writer lock, and hangs in its write
			_, err := p.Load().Append(context.Background(), valueBatch(t, 1_700_000_000_000, "stuck"), AppendOptions{})
			stuck <- err
		}()
		<-entered
	}))
	l, err := Open(e.dir, Config{SegmentBytes: 100}, Options{FS: fs, Clock: e.clock, Logger: logger})
	require.NoError(t, err)
	p.Store(NewPartition("t", 0, l))
	defer p.Load().Close()
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
	case <-time.After(10 * time.Second):
		unstick()
		t.Fatal("the append that rolled, its line handed on, waited for another append stuck in its write")
	}
	require.True(t, rolled.Load())
	unstick()
	require.NoError(t, <-stuck)
	require.EqualValues(t, 3, l.LogEndOffset())
}
