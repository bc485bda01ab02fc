package log

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestPartitionLockBehindAStuckAppend: Partition.Lock, behind an append stuck in
// its write, returns its ctx's error when its ctx ends (before the call,
// or by a deadline), holding nothing: the stuck append goes on once the
// write does, and the partition serves. Taken, the lock holds the
// partition's calls back (until their ctx ends); Reopen and Discard under
// it change the partition without waiting for it (Discard waking the
// waiting readers, as Partition.Discard does), Unlock twice is one
// Unlock, and a change after Unlock panics.
func TestPartitionLockBehindAStuckAppend(t *testing.T) {
	e := newEnv(t)
	hang, fs := newHangingWrite(t, e.fs, "")
	e.fs = fs
	p := NewPartition("topic", 0, e.open(Config{}))
	defer p.Close()
	defer hang.unstick() // before the Close, which waits for the stuck write: a failed assertion frees it
	ctx := context.Background()
	_, err := p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "a"), AppendOptions{})
	require.NoError(t, err)
	hang.arm()
	stuck := make(chan error, 1)
	go func() {
		_, err := p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "b"), AppendOptions{})
		stuck <- err
	}()
	testkit.AwaitHold(t, hang.entered, stuck, "the Append of b")

	for _, deadline := range []bool{false, true} {
		var cctx context.Context
		var cancel context.CancelFunc
		if deadline {
			cctx, cancel = context.WithTimeout(ctx, time.Millisecond)
		} else {
			cctx, cancel = context.WithCancel(ctx)
			cancel()
		}
		done := make(chan error, 1)
		go func() {
			k, err := p.Lock(cctx)
			if k != nil {
				k.Unlock()
			}
			done <- err
		}()
		select {
		case err := <-done:
			require.ErrorIs(t, err, cctx.Err())
		case <-time.After(testkit.HangGuard):
			hang.unstick()
			t.Fatalf("Lock (deadline %v) waited for the stuck write", deadline)
		}
		cancel()
	}
	// Nothing held: a read goes on.
	rctx, cancel := context.WithTimeout(ctx, testkit.HangGuard)
	offsets, err := p.ListedOffsets(rctx)
	cancel()
	require.NoError(t, err)
	require.EqualValues(t, 1, offsets.LogEnd)
	hang.unstick()
	require.NoError(t, testkit.Await(t, stuck, "Append's answer"))

	k, err := p.Lock(ctx)
	require.NoError(t, err)
	defer k.Unlock() // a failed assertion below leaves no lock held for the deferred Close to wait for
	// The partition's calls wait for it, until their ctx ends.
	actx, cancel := context.WithTimeout(ctx, time.Millisecond)
	_, err = p.Append(actx, valueBatch(t, e.clock.Now().UnixMilli(), "lost"), AppendOptions{})
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, k.Reopen(func() (*Log, error) {
		return Open(e.dir, Config{RetentionTime: time.Hour}, Options{FS: e.fs, Clock: e.clock})
	}))
	k.Unlock()
	k.Unlock() // a second Unlock does nothing
	require.Panics(t, func() { _ = k.Discard() })
	require.Equal(t, time.Hour, p.Log().Config().RetentionTime)
	_, err = p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "c"), AppendOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 3, p.LogEndOffset(), "a, b, c")

	k, err = p.Lock(ctx)
	require.NoError(t, err)
	defer k.Unlock() // as above
	changed := p.Changed()
	require.NoError(t, k.Discard())
	select {
	case <-changed: // a long-polling reader wakes, to find the partition closed
	default:
		t.Fatal("Discard under the lock woke no waiting reader")
	}
	k.Unlock()
	_, err = p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "d"), AppendOptions{})
	require.ErrorIs(t, err, ErrClosed)
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

// TestPartitionLockFreeTakenWhateverTheCtx: Partition.Lock says
// a lock that is free is taken whatever the ctx, as holdLock.LockContext
// says of itself (semaphore.Weighted's Acquire refuses an ended ctx even
// when it could acquire: the TryAcquire before it is what takes a free
// lock). Kills: holdLock.LockContext without its TryAcquire.
func TestPartitionLockFreeTakenWhateverTheCtx(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	m := newHoldLock()
	require.NoError(t, m.LockContext(ended), "a free lock is taken whatever the ctx")
	require.False(t, m.TryRLock(), "held exclusively")
	m.Unlock()

	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	defer p.Close()
	k, err := p.Lock(ended)
	require.NoError(t, err, "a free partition lock is taken whatever the ctx")
	require.Same(t, p.log.Load(), k.Log())
	_, err = p.Append(ended, valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.ErrorIs(t, err, context.Canceled, "held: the append waits until its ctx ends")
	k.Unlock()
	_, err = p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
}

// TestPartitionGettersUnderAPartitionLock: under a PartitionLock
// (as during a Reopen), the offsets' getters do not wait for it (they
// read the log being closed, whose offsets the new one opens with), and
// LogContext waits only until its ctx ends. Kills: HighWatermark through
// Log() (which waits for the lock); LogContext without its ctx.
func TestPartitionGettersUnderAPartitionLock(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	defer p.Close()
	_, err := p.Append(context.Background(), valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.NoError(t, err)
	k, err := p.Lock(context.Background())
	require.NoError(t, err)
	defer k.Unlock()

	type answer struct {
		hw, end, start int64
		offsets        PartitionOffsets
		logErr         error
	}
	done := make(chan answer, 1)
	go func() {
		var a answer
		a.hw, a.end, a.start, a.offsets = p.HighWatermark(), p.LogEndOffset(), p.LogStartOffset(), p.Offsets()
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		_, a.logErr = p.LogContext(ctx)
		done <- a
	}()
	select {
	case a := <-done:
		require.Equal(t, answer{hw: 1, end: 1, start: 0, offsets: PartitionOffsets{LogStart: 0, HighWatermark: 1, LogEnd: 1},
			logErr: context.DeadlineExceeded}, a)
	case <-time.After(testkit.HangGuard):
		k.Unlock() // lets the getter go on
		<-done
		t.Fatal("a getter waited for the PartitionLock (or LogContext past its ctx)")
	}
}

// TestAppendAsyncHeedsItsCtxUnderAPartitionLock: a partition's
// AppendAsync whose ctx ends while it waits for the partition's lock (a
// Reopen's, here a PartitionLock) returns ctx's error, nothing appended,
// as Append does. Kills: AppendAsync answering nil then.
func TestAppendAsyncHeedsItsCtxUnderAPartitionLock(t *testing.T) {
	e := newEnv(t)
	p := NewPartition("t", 0, e.open(Config{}))
	defer p.Close()
	k, err := p.Lock(context.Background())
	require.NoError(t, err)
	defer k.Unlock() // before p.Close, should the test fail
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	_, d, err := p.AppendAsync(ctx, valueBatch(t, 1_700_000_000_000, "a"), AppendOptions{})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, d.Pending())
	k.Unlock()
	require.EqualValues(t, 0, p.LogEndOffset(), "nothing appended")
}
