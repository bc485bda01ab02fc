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
// next one). In a binary built with the race detector, a line logged while
// the mutex is not held panics. It sits below log, consumer and the
// broker (the root package) and uses
// nothing of runnel's.
package lockedlog

import (
	"context"
	"log/slog"
	"strconv"
	"sync/atomic"
)

// Queue holds the lines logged under a mutex until it is released. Init
// ties it to its mutex; its fields are guarded by that mutex.
type Queue struct {
	mu    Mutex
	lines []line
	// pending is whether lines are queued, for Pending (read without the
	// mutex); written with it.
	pending atomic.Bool
	// delivering is set while a goroutine hands queued lines to their
	// handlers, with the mutex released: lines queued meanwhile are left
	// to it, so that they come out in the order logged, and so that a
	// handler that calls back into the code (which queues a line and
	// unlocks) does not wait for itself. Set under the mutex; cleared
	// under it, or without it by a deliverer that gives up (see
	// deliver).
	delivering atomic.Bool
	// noWait: the mutex may be held long, and every release of it goes
	// through Unlock or UnlockKeep (see InitNoWait).
	noWait bool
	// hold, if set, reports whether the lines queued are to stay queued
	// for now (see InitNoWait).
	hold func() bool
}

// line is a record logged under the mutex, for Unlock to hand to h.
type line struct {
	h slog.Handler
	r slog.Record
}

// Mutex is the lock a Queue is tied to: a *sync.Mutex, or a lock of the
// caller's with the same methods (the log's writer lock, whose waits take
// a ctx).
type Mutex interface {
	Lock()
	Unlock()
	TryLock() bool
}

// Init ties q to mu, the mutex that guards it, and returns a logger whose
// lines are queued on q for next's handler: next's handler is asked only
// whether a level is enabled while mu is held. The logger is to be used
// only by code that holds mu and releases it with q.Unlock. Init is
// called once, before q is shared.
func (q *Queue) Init(mu Mutex, next *slog.Logger) *slog.Logger {
	q.mu = mu
	return slog.New(handler{q: q, next: next.Handler()})
}

// InitNoWait is Init for a mutex that its holders may hold long (across
// file I/O that a disk that hangs stretches without bound): the goroutine
// that hands lines on does not wait for it to look for more lines after
// a batch (see Unlock). Every release of such a mutex must go through
// Unlock, or UnlockKeep by a caller that sees to the lines it leaves
// queued: a plain release would leave the lines its holder was to hand
// on queued until the next Unlock.
//
// hold, if not nil, is asked (the mutex held) before each batch Unlock
// hands on: while it reports true, the lines stay queued, a goroutine
// handing lines on already stops at its next batch, and whoever made
// hold report false calls Unlock (with the mutex taken, if Pending) once
// it has, so that a line left then is handed on: having seen hold true,
// the goroutine that stops reads it again, and Pending, once it has
// released the mutex.
func (q *Queue) InitNoWait(mu Mutex, next *slog.Logger, hold func() bool) *slog.Logger {
	q.noWait = true
	q.hold = hold
	return q.Init(mu, next)
}

// holding reports whether hold says to keep the lines queued.
func (q *Queue) holding() bool { return q.hold != nil && q.hold() }

// handler is the handler of Logger's logger: it queues each line for
// next.
type handler struct {
	q    *Queue
	next slog.Handler
}

func (h handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h handler) Handle(_ context.Context, r slog.Record) error {
	if raceEnabled && h.q.mu.TryLock() {
		h.q.mu.Unlock()
		panic("lockedlog: line " + strconv.Quote(r.Message) + " logged without the mutex held")
	}
	h.q.lines = append(h.q.lines, line{h.next, r.Clone()}) // the caller holds the mutex
	h.q.pending.Store(true)
	return nil
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	return handler{q: h.q, next: h.next.WithAttrs(as)}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{q: h.q, next: h.next.WithGroup(name)}
}

// Unlock releases q's mutex, which the caller holds, then hands the lines
// queued under it to their handlers, in the order logged.
//
// With nothing queued it only releases the mutex. When another
// goroutine is handing queued lines on already (its handler is running),
// the lines are left to it and Unlock returns at once: a handler that
// calls back into the code that logged, and so logs and unlocks again,
// never waits for itself, and the lines keep their order. The goroutine
// that hands lines on takes the mutex again after each batch to look for
// more, so it may hand on lines of others before it returns; if the
// mutex is held then and the Queue was made by InitNoWait, it does not
// wait for it but leaves the lines to be handed on by whoever holds it,
// or takes it next, as it unlocks. While the Queue's hold (see
// InitNoWait) is under way no batch is handed on, neither by Unlock nor
// by a goroutine handing lines on already: the lines are left to
// whoever ends the hold.
//
// A handler's error is ignored, as slog.Logger ignores it. Should a
// handler panic, the lines left in its batch are dropped and the panic
// goes on; later lines are handed on by the next Unlock that finds some.
func (q *Queue) Unlock() {
	for {
		if len(q.lines) == 0 {
			q.mu.Unlock()
			return
		}
		if !q.delivering.Load() {
			q.deliver()
			return
		}
		q.mu.Unlock()
		// The goroutine handing lines on may have given up meanwhile,
		// finding the mutex held (by this call), before it saw these
		// lines: look again (see deliver).
		if q.delivering.Load() || !q.pending.Load() || !q.mu.TryLock() {
			return
		}
	}
}

// UnlockKeep releases q's mutex and leaves the lines queued: for a
// caller that holds another lock a handler might wait for, after which
// it (or whoever unlocks next) calls Unlock.
func (q *Queue) UnlockKeep() { q.mu.Unlock() }

// Pending reports whether lines are queued, without the mutex: a caller
// that left them queued (UnlockKeep), once it released its other lock,
// takes the mutex and calls Unlock if they are.
func (q *Queue) Pending() bool { return q.pending.Load() }

// deliver is Unlock's slow path: the mutex is held and lines are queued.
//
// After each batch it takes the mutex again to look for more; under
// InitNoWait only if it can at once. Held, it gives up instead (clears delivering), and looks
// again whether lines are queued and the mutex is free: the holder, or a
// caller of Unlock that found delivering set before it was cleared, reads
// delivering again once it released the mutex, and hands on the lines
// queued if it finds it cleared (see Unlock); one of the two sees the
// other's lines.
func (q *Queue) deliver() {
	mu := q.mu
	q.delivering.Store(true)
	done := false
	defer func() {
		if !done { // a handler panicked, mu released
			q.delivering.Store(false)
		}
	}()
	for {
		for q.holding() {
			// Held: left to whoever ends the hold, unless it ended
			// since (it then found mu held, or delivering set).
			q.delivering.Store(false)
			mu.Unlock()
			if q.holding() || !q.pending.Load() || !mu.TryLock() {
				done = true
				return
			}
			if q.delivering.Load() || len(q.lines) == 0 { // another goroutine took over
				done = true
				mu.Unlock()
				return
			}
			q.delivering.Store(true)
		}
		lines := q.lines
		q.lines = nil
		q.pending.Store(false)
		mu.Unlock()
		for i := range lines {
			_ = lines[i].h.Handle(context.Background(), lines[i].r)
		}
		if !q.noWait {
			mu.Lock()
		} else if !mu.TryLock() {
			q.delivering.Store(false)
			if !q.pending.Load() || !mu.TryLock() {
				done = true
				return // left to mu's holder, or to a caller of Unlock
			}
			if q.delivering.Load() { // another goroutine took over
				done = true
				mu.Unlock()
				return
			}
			q.delivering.Store(true)
		}
		if len(q.lines) == 0 {
			q.delivering.Store(false)
			done = true
			mu.Unlock()
			return
		}
	}
}
