package producer

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
)

// Buffer space: every record takes one of MaxBufferedRecords and its size
// of MaxBufferedBytes from Produce until its batch is done. A Produce
// that finds no room waits in a queue (spaceQueue), and space freed goes
// to the queue in order, as the waiters of Java's BufferPool get memory:
// once one Produce waits, later ones queue behind it instead of taking
// the space it waits for, so a large record is not starved by smaller
// ones that keep fitting into the space freed. The path without a waiter
// costs one atomic load more than the reservation itself.

// reserve takes buffer space for one record of size bytes: at once if
// nobody waits for space and there is room, else, if block is set, once
// the Produce calls that wait before it have theirs and there is room,
// until ctx ends (its error) or Close (ErrClosed); else ErrMaxBuffered.
func (p *Producer) reserve(ctx context.Context, size int64, block bool) error {
	if p.space.n.Load() == 0 && p.tryReserve(size) {
		return nil
	}
	return p.reserveQueued(ctx, size, block)
}

// reserveQueued is reserve once its first look found somebody waiting, or
// no room: it queues for the space, or fails without block. produce calls
// it after that look of its own (inlined there: a call less for every
// record).
func (p *Producer) reserveQueued(ctx context.Context, size int64, block bool) error {
	if !block {
		return ErrMaxBuffered
	}
	w, first := p.space.enqueue(p, size)
	if w == nil {
		return nil
	}
	if first && p.cfg.linger > 0 {
		// Batches do not linger while a Produce waits for space (see
		// lingerLeft): the lingering ones go now, freeing it.
		p.wakeAll()
	}
	if p.testWaiting != nil {
		p.testWaiting()
	}
	var err error
	select {
	case <-w.granted:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-p.done:
		err = ErrClosed
	}
	p.space.leave(p, w)
	return err
}

// tryReserve takes buffer space for one record of size bytes if there is
// room: fewer than MaxBufferedRecords records, and size more bytes within
// MaxBufferedBytes (an empty buffer takes any record). A failure changes
// nothing, so it needs no undo — an undo that woke the waiters would wake
// the caller itself, which then spun while the buffer stayed full. The
// byte bound is checked before it is added: goroutines producing at the
// same moment may pass it by a record each.
func (p *Producer) tryReserve(size int64) bool {
	for {
		n := p.bufRecords.Load()
		if b := p.bufBytes.Load(); n >= p.cfg.maxRecords || p.cfg.maxBytes > 0 && b > 0 && b+size > p.cfg.maxBytes {
			return false
		}
		if p.bufRecords.CompareAndSwap(n, n+1) {
			p.bufBytes.Add(size)
			return true
		}
	}
}

// release frees the buffer space of n records of size bytes in all, and
// hands it to the Produce calls waiting for space, in order.
func (p *Producer) release(n, size int64) {
	p.bufBytes.Add(-size)
	p.bufRecords.Add(-n)
	// Freed before this load, space is seen by a waiter that registers
	// after it (see enqueue): nobody is left waiting with room.
	if p.space.n.Load() > 0 {
		p.space.mu.Lock()
		p.space.grantLocked(p)
		p.space.mu.Unlock()
	}
	p.emptied.broadcast()
}

// spaceQueue holds the Produce calls waiting for buffer space, oldest
// first.
type spaceQueue struct {
	// n counts the waiters: those in q, and one registering under mu
	// that has not yet found out whether it must wait. Read without mu
	// by reserve's path without a waiter, release and Flush.
	n  atomic.Int32
	mu sync.Mutex
	q  []*spaceWaiter
}

// spaceWaiter is one Produce waiting for space.
type spaceWaiter struct {
	size    int64
	granted chan struct{} // closed once its space is reserved for it
}

// enqueue reserves size bytes at once if nobody waits and there is room,
// and returns nil; else it queues a waiter, whose granted channel is
// closed once the space is reserved for it, and reports whether it is
// the only one. The waiter must then wait, and leave if it stops waiting
// before.
func (q *spaceQueue) enqueue(p *Producer, size int64) (w *spaceWaiter, first bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	// Counted before it looks at the space again: a release that frees
	// space after that look sees the count, and grants it.
	q.n.Add(1)
	if len(q.q) == 0 && p.tryReserve(size) {
		q.n.Add(-1)
		return nil, false
	}
	w = &spaceWaiter{size: size, granted: make(chan struct{})}
	q.q = append(q.q, w)
	return w, len(q.q) == 1
}

// grantLocked reserves space for the waiters at the head of the queue,
// in order, as long as there is room for the first, and wakes them. Each
// stays counted in n until its space is reserved (see Flush). Once the
// producer is closed it grants none.
func (q *spaceQueue) grantLocked(p *Producer) {
	// Once closed (set before Close closes done and fails any record),
	// the waiters leave through done without space: space granted now
	// would be held past Close's return, until the waiter saw it closed.
	if p.closed.Load() {
		return
	}
	for len(q.q) > 0 {
		w := q.q[0]
		if !p.tryReserve(w.size) {
			return
		}
		close(w.granted)
		k := copy(q.q, q.q[1:])
		q.q[k] = nil
		q.q = q.q[:k]
		q.n.Add(-1)
	}
}

// leave takes w, which stopped waiting (its ctx ended, or Close), out of
// the queue; the waiters behind it may fit now. If w's space was reserved
// meanwhile, it is freed again (for the next in line).
func (q *spaceQueue) leave(p *Producer, w *spaceWaiter) {
	q.mu.Lock()
	i := slices.Index(q.q, w)
	if i < 0 {
		q.mu.Unlock()
		p.release(1, w.size) // granted as it stopped waiting
		return
	}
	q.q = slices.Delete(q.q, i, i+1)
	q.n.Add(-1)
	q.grantLocked(p)
	q.mu.Unlock()
	p.emptied.broadcast() // a Flush may wait for nothing else
}

// drained reports whether no record takes buffer space and no Produce
// waits for it (what Flush waits for). The waiters are counted first: one
// that is served stays counted until its record has taken its space
// (grantLocked), so a record passing from the queue to the buffer is
// seen in one or the other.
func (p *Producer) drained() bool {
	return p.space.n.Load() == 0 && p.bufRecords.Load() == 0
}

// waitSet lets goroutines wait for an empty buffer (Flush): release, and
// a waiter leaving the queue, broadcast to them when any wait.
type waitSet struct {
	n  atomic.Int32
	mu sync.Mutex
	ch chan struct{}
}

// wait registers a waiter and returns the channel to wait on; the caller
// must check its condition again after wait, and call leave when done.
func (w *waitSet) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n.Add(1)
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *waitSet) leave() { w.n.Add(-1) }

func (w *waitSet) broadcast() {
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
}
