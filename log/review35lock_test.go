package log

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReview35PartitionLock: Partition.Lock, behind an append stuck in
// its write, returns its ctx's error when its ctx ends (before the call,
// or by a deadline), holding nothing: the stuck append goes on once the
// write does, and the partition serves. Taken, the lock holds the
// partition's calls back (until their ctx ends); Reopen and Discard under
// it change the partition without waiting for it (Discard waking the
// waiting readers, as Partition.Discard does), Unlock twice is one
// Unlock, and a change after Unlock panics.
func TestReview35PartitionLock(t *testing.T) {
	var armed atomic.Bool
	entered, release := make(chan struct{}), make(chan struct{})
	e := newEnv(t)
	e.fs = vfs.WithFaults(e.fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && armed.CompareAndSwap(true, false) {
			close(entered)
			<-release
		}
		return nil
	}))
	p := NewPartition("topic", 0, e.open(Config{}))
	defer p.Close()
	ctx := context.Background()
	_, err := p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "a"), AppendOptions{})
	require.NoError(t, err)
	armed.Store(true)
	stuck := make(chan error, 1)
	go func() {
		_, err := p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "b"), AppendOptions{})
		stuck <- err
	}()
	<-entered

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
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatalf("Lock (deadline %v) waited for the stuck write", deadline)
		}
		cancel()
	}
	// Nothing held: a read goes on.
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	offsets, err := p.ListedOffsets(rctx)
	cancel()
	require.NoError(t, err)
	require.EqualValues(t, 1, offsets.LogEnd)
	close(release)
	require.NoError(t, <-stuck)

	k, err := p.Lock(ctx)
	require.NoError(t, err)
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
