package lockedlog

import (
	"context"
	"log/slog"
	"sync"
)

// Held holds the lines of the loggers it makes until Release, then hands
// them on, in order, and every later line at once. It is for code that
// makes something that logs (a log it opens) while it holds a lock that
// no Queue guards (the broker's admin token, a partition's lock), so that
// the lines wait until that lock is released: a handler may then call
// what waits for the lock. What it made keeps its logger after Release.
type Held struct {
	mu       sync.Mutex
	q        Queue // guarded by mu
	released bool  // mu
}

// NewHeld returns a Held that holds lines until Release.
func NewHeld() *Held {
	h := &Held{}
	h.q.mu = &h.mu
	return h
}

// Logger returns a logger whose lines are held until Release, for next's
// handler; only its Enabled is asked before then. A next that logs
// nowhere (slog.DiscardHandler) is returned as it is.
func (h *Held) Logger(next *slog.Logger) *slog.Logger {
	if next.Handler() == slog.DiscardHandler {
		return next
	}
	return slog.New(heldHandler{h: h, next: next.Handler()})
}

// Release hands the lines held on to their handlers, on the calling
// goroutine, and lets every later line go on at once (see Queue.Unlock
// for the order and for a handler that logs again).
func (h *Held) Release() {
	h.mu.Lock()
	h.released = true
	h.q.Unlock()
}

// heldHandler is the handler of Held's loggers.
type heldHandler struct {
	h    *Held
	next slog.Handler
}

func (h heldHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h heldHandler) Handle(_ context.Context, r slog.Record) error {
	h.h.mu.Lock()
	h.h.q.lines = append(h.h.q.lines, line{h.next, r.Clone()})
	h.h.q.pending.Store(true)
	if h.h.released {
		h.h.q.Unlock()
	} else {
		h.h.mu.Unlock()
	}
	return nil
}

func (h heldHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return heldHandler{h: h.h, next: h.next.WithAttrs(as)}
}

func (h heldHandler) WithGroup(name string) slog.Handler {
	return heldHandler{h: h.h, next: h.next.WithGroup(name)}
}
