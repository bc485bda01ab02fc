package log

import (
	"context"
	"sync"
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
// flow of reads does not starve a Reopen. The zero value is unlocked.
type holdLock struct {
	mu       sync.Mutex
	readers  int           // holding it shared
	writer   bool          // holding it exclusively
	writers  int           // waiting to hold it exclusively
	released chan struct{} // closed when the lock may have become free for a waiter; nil when no one waits
}

// RLock holds the lock shared, waiting as long as it takes.
func (m *holdLock) RLock() { _ = m.RLockContext(context.Background()) }

// RLockContext holds the lock shared, or returns ctx's error if ctx ends
// first.
func (m *holdLock) RLockContext(ctx context.Context) error {
	m.mu.Lock()
	for m.writer || m.writers > 0 {
		if err := m.waitLocked(ctx); err != nil {
			return err
		}
	}
	m.readers++
	m.mu.Unlock()
	return nil
}

// RUnlock releases a shared hold.
func (m *holdLock) RUnlock() {
	m.mu.Lock()
	if m.readers--; m.readers < 0 {
		m.mu.Unlock()
		panic("runnel/log: RUnlock of a partition lock not held shared")
	}
	if m.readers == 0 {
		m.wakeLocked()
	}
	m.mu.Unlock()
}

// TryRLock holds the lock shared if it can without waiting, and reports
// whether it did.
func (m *holdLock) TryRLock() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.writer || m.writers > 0 {
		return false
	}
	m.readers++
	return true
}

// Lock holds the lock exclusively, waiting as long as it takes.
func (m *holdLock) Lock() { _ = m.LockContext(context.Background()) }

// LockContext holds the lock exclusively, or returns ctx's error if ctx
// ends first (the readers it kept waiting go on then).
func (m *holdLock) LockContext(ctx context.Context) error {
	m.mu.Lock()
	m.writers++
	for m.writer || m.readers > 0 {
		if err := m.waitLocked(ctx); err != nil {
			m.mu.Lock()
			m.writers--
			m.wakeLocked()
			m.mu.Unlock()
			return err
		}
	}
	m.writers--
	m.writer = true
	m.mu.Unlock()
	return nil
}

// Unlock releases an exclusive hold.
func (m *holdLock) Unlock() {
	m.mu.Lock()
	if !m.writer {
		m.mu.Unlock()
		panic("runnel/log: Unlock of a partition lock not held exclusively")
	}
	m.writer = false
	m.wakeLocked()
	m.mu.Unlock()
}

// waitLocked waits, with m.mu held at the call and, unless ctx ended,
// at the return, for the next release of the lock.
func (m *holdLock) waitLocked(ctx context.Context) error {
	if m.released == nil {
		m.released = make(chan struct{})
	}
	released := m.released
	m.mu.Unlock()
	select {
	case <-released:
		m.mu.Lock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wakeLocked wakes every waiter (m.mu held).
func (m *holdLock) wakeLocked() {
	if m.released != nil {
		close(m.released)
		m.released = nil
	}
}
