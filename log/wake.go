package log

import (
	"math"
	"sync/atomic"
)

// A Wake is one channel (Done) for a reader that waits on several
// partitions at once, each for its own count of bytes: the reader adds
// each partition's Mark and the bytes it waits for there (Add), waits
// on Done, and calls Stop once it no longer waits. The first partition
// whose wait is met (see Mark.ChangedPast, whose rules each wait
// follows) closes Done; the others' that are met after it close
// nothing. However many partitions it waits on, the reader waits on one
// channel, in a plain select (a fetch of several partitions that found
// less than its MinBytes waits so: for a long poll, a byte each, which
// every change that closes Partition.Changed's channel meets):
//
//	var w log.Wake
//	mark := p.Mark() // for each partition p, before its read
//	// ... read each partition; w.Add(mark, n) for each short of n bytes ...
//	select {
//	case <-w.Done():
//	case <-ctx.Done():
//	}
//	w.Stop() // then w.Fired(i) says whether the i-th Add's wait was met
//
// A Wake is used again after Stop: the next Add begins a new wait, on
// the same channel if the last wait closed none, on a new one if it did,
// and with the waits' entries of the last (kept, one for each Add, with
// the Wake). Its zero value is ready to use. Its methods are for one
// goroutine (the reader's); the appends and changes of the partitions
// that close Done may run concurrently with them.
type Wake struct {
	ch chan struct{}
	// closed is whether ch is closed, or being closed by the waiter
	// that set it: the waiters of several partitions fire under their
	// partitions' locks, not one lock, and the first closes ch.
	closed atomic.Bool
	// ws are the waits of the wait under way (or the last, once
	// stopped), one for each Add, in Add's order. The slots up to
	// cap(ws) are all set, each kept from one wait to the next.
	ws      []*byteWaiter
	stopped bool // Stop ended the wait: the next Add begins another
}

// Add adds to w's wait m's partition, for n bytes: Done is closed once
// the appends to the partition since m was taken have moved its high
// watermark past n bytes, or the partition changed otherwise than by an
// append since m (see Mark.ChangedPast). Done is closed at once if that
// is so already, or n is 0 or less, or m is the zero Mark. After Stop,
// Add begins a new wait (see Wake).
func (w *Wake) Add(m Mark, n int64) {
	w.begin()
	bw := w.next()
	bw.p, bw.i, bw.fired = nil, -1, false
	p := m.p
	if p == nil || n <= 0 {
		bw.fire()
		return
	}
	at := m.bytes + n
	if at < m.bytes {
		at = math.MaxInt64 // past any count: an overflow
	}
	p.notifyMu.Lock()
	if p.epoch != m.epoch || watermarkBytes(p.current()) >= at {
		bw.fire()
	} else {
		bw.p, bw.at = p, at
		p.waiters.push(bw)
	}
	p.notifyMu.Unlock()
}

// Done returns the channel that the first wait met of those added since
// the last Stop closes. Called after Stop (and before an Add), it begins
// a new wait, as Add does.
func (w *Wake) Done() <-chan struct{} {
	w.begin()
	return w.ch
}

// Stop ends w's wait: it takes each of its partitions' waits that did
// not fire out of the partition's heap, so that the appends no longer
// look at them, and no later change closes Done. The caller calls it
// once it no longer waits, whether or not Done was closed. A second Stop
// does nothing.
func (w *Wake) Stop() {
	if w.stopped {
		return
	}
	w.stopped = true
	for _, bw := range w.ws {
		p := bw.p
		if p == nil {
			continue // fired as it was added
		}
		p.notifyMu.Lock()
		if bw.i >= 0 {
			p.waiters.remove(bw.i)
		}
		p.notifyMu.Unlock()
	}
}

// Fired reports, once Stop ended the wait, whether its i-th Add's wait
// (from 0, in Add's order) was met: what would have closed that
// partition's own channel of ChangedPast. It is false for one that Stop
// took out of its partition's heap, and for an i past the Adds.
func (w *Wake) Fired(i int) bool {
	return w.stopped && i >= 0 && i < len(w.ws) && w.ws[i].fired
}

// begin begins a new wait if Stop ended the last, and makes the first
// channel.
func (w *Wake) begin() {
	if w.stopped {
		w.stopped = false
		w.ws = w.ws[:0]
		if w.closed.Load() {
			w.ch = nil
			w.closed.Store(false)
		}
	}
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
}

// next returns the slot of w's next wait, made in slabs that double.
func (w *Wake) next() *byteWaiter {
	n := len(w.ws)
	if n == cap(w.ws) {
		slab := make([]byteWaiter, max(4, n))
		ws := make([]*byteWaiter, n, n+len(slab))
		copy(ws, w.ws)
		for i := range slab {
			slab[i].w = w
			ws = append(ws, &slab[i])
		}
		w.ws = ws
	}
	w.ws = w.ws[:n+1]
	return w.ws[n]
}

// byteWaiter is one partition's wait of a Wake (or of ChangedPast): the
// count of watermarkBytes it waits for, its partition (nil if it fired as
// it was added), its index in the partition's heap (-1 once out of it)
// and whether it fired (p's notifyMu, when p is not nil).
type byteWaiter struct {
	at    int64
	w     *Wake
	p     *Partition
	i     int
	fired bool
}

// fire marks bw met, and closes its Wake's channel unless another wait
// of it did. It runs under bw.p's notifyMu, or as bw is added.
func (bw *byteWaiter) fire() {
	bw.fired = true
	if bw.w.closed.CompareAndSwap(false, true) {
		close(bw.w.ch)
	}
}

// byteWaiters is a min-heap of byteWaiter by at, each at its index i
// (container/heap's algorithm, written out for the one type: its
// interface calls were a third of a wait's adds and stops).
type byteWaiters []*byteWaiter

// push adds w.
func (h *byteWaiters) push(w *byteWaiter) {
	*h = append(*h, w)
	h.up(len(*h)-1, w)
}

// remove takes out and returns the waiter at i (0, the least), its
// index then -1.
func (h *byteWaiters) remove(i int) *byteWaiter {
	s := *h
	w, n := s[i], len(s)-1
	last := s[n]
	s[n] = nil
	*h = s[:n]
	if i != n {
		if !h.down(i, last) {
			h.up(i, last)
		}
	}
	w.i = -1
	return w
}

// up places w, whose slot is j, at or above j.
func (h byteWaiters) up(j int, w *byteWaiter) {
	for j > 0 {
		parent := (j - 1) / 2
		if h[parent].at <= w.at {
			break
		}
		h[j] = h[parent]
		h[j].i = j
		j = parent
	}
	h[j], w.i = w, j
}

// down places w, whose slot is i, at or below i, and reports whether it
// went below.
func (h byteWaiters) down(i int, w *byteWaiter) bool {
	i0, n := i, len(h)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && h[r].at < h[c].at {
			c = r
		}
		if h[c].at >= w.at {
			break
		}
		h[i] = h[c]
		h[i].i = i
		i = c
	}
	h[i], w.i = w, i
	return i > i0
}
