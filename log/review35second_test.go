package log

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

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
	case <-time.After(10 * time.Second):
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
	case <-time.After(10 * time.Second):
		t.Fatal("the goroutine handing lines on did not return")
	}
	require.Equal(t, 1, count(), "a line logged under a HoldLines handed on before its release")
	release()
	require.Equal(t, []int64{1, 2}, bases, "roll lines handed on once each, in order")
	require.False(t, l.queue.Pending())
}

// TestPartitionLockClose: Close under a PartitionLock
// closes the log with its flush (a log opened again holds every record
// appended), wakes the waiting readers, and keeps the lock held until
// Unlock; after Unlock the partition's calls answer ErrClosed, and a
// Close, Log, Reopen or Discard of the released lock panics.
func TestPartitionLockClose(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l, err := Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	require.NoError(t, err)
	p := NewPartition("t", 0, l)
	_, err = p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "a"), AppendOptions{})
	require.NoError(t, err)
	k, err := p.Lock(ctx)
	require.NoError(t, err)
	changed := p.Changed()
	require.NoError(t, k.Close())
	select {
	case <-changed:
	default:
		t.Fatal("Close under the lock woke no waiting reader")
	}
	short, cancel := context.WithTimeout(ctx, time.Millisecond)
	_, err = p.Append(short, valueBatch(t, e.clock.Now().UnixMilli(), "held back"), AppendOptions{})
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "an append while the lock is held waits for it")
	k.Unlock()
	_, err = p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "b"), AppendOptions{})
	require.ErrorIs(t, err, ErrClosed)
	require.Panics(t, func() { _ = k.Close() })
	require.Panics(t, func() { _ = k.Log() })
	require.Panics(t, func() { _ = k.Discard() })
	require.Panics(t, func() { _ = k.Reopen(func() (*Log, error) { return nil, nil }) })

	l, err = Open(e.dir, Config{}, Options{FS: e.fs, Clock: e.clock})
	require.NoError(t, err)
	defer l.Close()
	require.EqualValues(t, 1, l.LogEndOffset())
	require.True(t, l.Recovery().Clean, "Close under the lock closed the log cleanly")
}
