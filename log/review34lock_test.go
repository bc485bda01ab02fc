package log

import (
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReview34HoldLock: the partition lock's waits end with their ctx:
// a reader's behind a writer, a writer's behind a reader; a writer that
// gives up lets the readers it held back go on; a writer waiting holds
// new readers back (as a sync.RWMutex); a free lock is taken whatever
// the ctx.
func TestReview34HoldLock(t *testing.T) {
	var m holdLock
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, m.RLockContext(ended), "a free lock is taken whatever the ctx")
	require.True(t, m.TryRLock())
	m.RUnlock()

	// A writer behind the reader: it holds new readers back until it
	// gives up.
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan error, 1)
	go func() { wdone <- m.LockContext(wctx) }()
	spinUntil(func() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.writers == 1 })
	require.False(t, m.TryRLock(), "a writer waits: new readers wait too")
	require.ErrorIs(t, m.RLockContext(ended), context.Canceled)
	rdone := make(chan error, 1)
	go func() { rdone <- m.RLockContext(context.Background()) }()
	wcancel()
	require.ErrorIs(t, <-wdone, context.Canceled)
	require.NoError(t, <-rdone, "the writer gave up: the reader it held back goes on")
	m.RUnlock()
	m.RUnlock()

	// A writer holding it: readers and writers wait until their ctx ends,
	// or it is released.
	m.Lock()
	require.ErrorIs(t, m.RLockContext(ended), context.Canceled)
	require.ErrorIs(t, m.LockContext(ended), context.Canceled)
	go func() { rdone <- m.RLockContext(context.Background()) }()
	go func() { wdone <- m.LockContext(context.Background()) }()
	m.Unlock()
	// One of them has it; the other follows once it is released.
	select {
	case err := <-rdone:
		require.NoError(t, err)
		m.RUnlock()
		require.NoError(t, <-wdone)
		m.Unlock()
	case err := <-wdone:
		require.NoError(t, err)
		m.Unlock()
		require.NoError(t, <-rdone)
		m.RUnlock()
	}
	require.True(t, m.TryRLock(), "free again")
	m.RUnlock()
	require.Panics(t, func() { m.RUnlock() })
	require.Panics(t, func() { m.Unlock() })
}

// TestReview34WriterLock: the log's writer lock's wait ends with its ctx;
// a free lock is taken whatever the ctx.
func TestReview34WriterLock(t *testing.T) {
	m := newWriterLock()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	require.NoError(t, m.LockContext(ended), "a free lock is taken whatever the ctx")
	require.ErrorIs(t, m.LockContext(ended), context.Canceled)
	done := make(chan error, 1)
	go func() { done <- m.LockContext(context.Background()) }()
	m.Unlock()
	require.NoError(t, <-done)
	m.Unlock()
	require.Panics(t, func() { m.Unlock() })
}

// spinUntil returns once cond holds (another goroutine makes it hold).
func spinUntil(cond func() bool) {
	for !cond() {
		runtime.Gosched()
	}
}
