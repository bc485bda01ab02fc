package log

import (
	"context"
	"testing"
	"time"

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
	ctx := context.Background()
	_, err := p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "a"), AppendOptions{})
	require.NoError(t, err)
	hang.arm()
	stuck := make(chan error, 1)
	go func() {
		_, err := p.Append(ctx, valueBatch(t, e.clock.Now().UnixMilli(), "b"), AppendOptions{})
		stuck <- err
	}()
	<-hang.entered

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
			hang.unstick()
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
	hang.unstick()
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
