package log

import (
	"context"
	"log/slog"
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
