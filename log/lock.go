package log

import (
	"context"
	"math"

	"golang.org/x/sync/semaphore"
)

// writerLock is the log's writer lock (Log.mu): a mutex that a caller
// with a ctx stops waiting for when the ctx ends. A writer holds it
// across file I/O (an append's write, a roll's creates, retention's
// removals), which a disk that hangs can stretch without bound; an Append
// whose ctx ends meanwhile must return with its ctx's error, not wait for
// that disk (a sync.Mutex cannot be given up). Waiters are served in
// order of arrival. Make it with newWriterLock.
type writerLock struct{ ch chan struct{} }

func newWriterLock() writerLock { return writerLock{ch: make(chan struct{}, 1)} }

// Lock takes the lock, waiting as long as it takes.
func (m writerLock) Lock() { m.ch <- struct{}{} }

// LockContext takes the lock, or returns ctx's error if ctx ends first. A
// free lock is taken whatever the ctx.
func (m writerLock) LockContext(ctx context.Context) error {
	select {
	case m.ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TryLock takes the lock if it is free, and reports whether it did.
func (m writerLock) TryLock() bool {
	select {
	case m.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// Unlock releases the lock, which must be held.
func (m writerLock) Unlock() {
	select {
	case <-m.ch:
	default:
		panic("runnel/log: unlock of an unlocked writer lock")
	}
}

// holdLock is a partition's lock (Partition.mu): its calls hold it shared
// while they use the log, and a Reopen holds it exclusively while it
// closes the log (an fsync) and opens it again (a recovery), file I/O that
// a disk that hangs can stretch without bound. Unlike a sync.RWMutex, a
// caller with a ctx stops waiting for it when the ctx ends. As a
// sync.RWMutex, a writer waiting keeps new readers out, so that a steady
// flow of reads does not starve a Reopen; a writer that gives up lets the
// readers it held back go on. It is a semaphore.Weighted of holdAll
// units, a shared hold taking one and an exclusive one all of them:
// Weighted serves its waiters in order, a request that does not fit (a
// writer's) holding back those behind it. Make it with newHoldLock.
type holdLock struct{ s *semaphore.Weighted }

// holdAll is the units of a holdLock: more than there are goroutines.
const holdAll = math.MaxInt64

func newHoldLock() holdLock { return holdLock{semaphore.NewWeighted(holdAll)} }

// RLockContext holds the lock shared, or returns ctx's error if ctx ends
// first. A lock free to take shared is taken whatever the ctx.
func (m holdLock) RLockContext(ctx context.Context) error {
	if m.s.TryAcquire(1) {
		return nil
	}
	return m.s.Acquire(ctx, 1)
}

// RUnlock releases a shared hold.
func (m holdLock) RUnlock() { m.s.Release(1) }

// TryRLock holds the lock shared if it can without waiting, and reports
// whether it did.
func (m holdLock) TryRLock() bool { return m.s.TryAcquire(1) }

// Lock holds the lock exclusively, waiting as long as it takes.
func (m holdLock) Lock() { _ = m.LockContext(context.Background()) }

// LockContext holds the lock exclusively, or returns ctx's error if ctx
// ends first (the readers it kept waiting go on then). A free lock is
// taken whatever the ctx.
func (m holdLock) LockContext(ctx context.Context) error {
	if m.s.TryAcquire(holdAll) {
		return nil
	}
	return m.s.Acquire(ctx, holdAll)
}

// Unlock releases an exclusive hold.
func (m holdLock) Unlock() { m.s.Release(holdAll) }
