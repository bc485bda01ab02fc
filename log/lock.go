package log

import "context"

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

// Unlock releases the lock, which must be held.
func (m writerLock) Unlock() {
	select {
	case <-m.ch:
	default:
		panic("runnel/log: unlock of an unlocked writer lock")
	}
}
