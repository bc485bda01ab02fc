// Package lockedlog lets code log while it holds a mutex without calling
// the application's slog.Handler under it. A handler may then call back
// into the code that logged (a log appender that produces to the broker's
// own partition, say) without a deadlock, and a slow handler holds no
// lock of the library's.
//
// The code that holds the mutex logs to a Queue's Logger: its handler
// asks the application's handler only whether the level is enabled, and
// queues the record if it is (with the default discard logger nothing is
// queued and nothing is allocated). The code then releases the mutex
// with the Queue's Unlock, which hands the queued records to the
// application's handler once the mutex is released, in the order they
// were logged.
//
// The Queue is guarded by the mutex: its Logger is used only while the
// mutex is held, and every release of the mutex after which lines may be
// queued goes through Unlock (a plain Unlock leaves them queued until the
// next one). It sits below log and consumer and uses nothing of runnel's.
package lockedlog

import (
	"context"
	"log/slog"
	"sync"
)

// Queue holds the lines logged under a mutex until it is released. The
// zero Queue is empty and ready for use. Its fields are guarded by the
// mutex whose holders log to it.
type Queue struct {
	lines []line
	// delivering is set while a goroutine hands queued lines to their
	// handlers, with the mutex released: lines queued meanwhile are left
	// to it, so that they come out in the order logged, and so that a
	// handler that calls back into the code (which queues a line and
	// unlocks) does not wait for itself.
	delivering bool
}

// line is a record logged under the mutex, for Unlock to hand to h.
type line struct {
	h slog.Handler
	r slog.Record
}

// Logger returns a logger whose lines are queued on q for next's handler:
// next's handler is asked only whether a level is enabled while the
// mutex is held. It is to be used only by code that holds the mutex and
// releases it with q.Unlock.
func (q *Queue) Logger(next *slog.Logger) *slog.Logger {
	return slog.New(handler{q: q, next: next.Handler()})
}

// handler is the handler of Logger's logger: it queues each line for
// next.
type handler struct {
	q    *Queue
	next slog.Handler
}

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(_ context.Context, r slog.Record) error {
	h.q.lines = append(h.q.lines, line{h.next, r.Clone()}) // the caller holds the mutex
	return nil
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	return handler{q: h.q, next: h.next.WithAttrs(as)}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{q: h.q, next: h.next.WithGroup(name)}
}

// Unlock releases mu, which the caller holds and which guards q, then
// hands the lines queued under it to their handlers, in the order logged.
//
// With nothing queued it only releases mu. When another goroutine is
// handing queued lines on already (its handler is running), the lines are
// left to it and Unlock returns at once: a handler that calls back into
// the code that logged, and so logs and unlocks again, never waits for
// itself, and the lines keep their order. The goroutine that hands lines
// on takes mu again after each batch to look for more, so it may hand on
// lines of others before it returns.
//
// A handler's error is ignored, as slog.Logger ignores it. Should a
// handler panic, the lines left in its batch are dropped and the panic
// goes on; later lines are handed on by the next Unlock that finds some.
func (q *Queue) Unlock(mu *sync.Mutex) {
	if len(q.lines) == 0 || q.delivering {
		mu.Unlock()
		return
	}
	q.deliver(mu)
}

// deliver is Unlock's slow path: mu is held and lines are queued.
func (q *Queue) deliver(mu *sync.Mutex) {
	q.delivering = true
	done := false
	defer func() {
		if !done { // a handler panicked, mu released
			mu.Lock()
			q.delivering = false
			mu.Unlock()
		}
	}()
	for {
		lines := q.lines
		q.lines = nil
		mu.Unlock()
		for i := range lines {
			_ = lines[i].h.Handle(context.Background(), lines[i].r)
		}
		mu.Lock()
		if len(q.lines) == 0 {
			q.delivering = false
			done = true
			mu.Unlock()
			return
		}
	}
}
