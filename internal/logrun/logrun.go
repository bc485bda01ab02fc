// Package logrun sets the level of the log lines of a failure that keeps
// coming back, so that it shows in the log without a line at every
// retry: the first of a run at the level its caller gives, then one at
// Warn every Every while it goes on, saying for how long and how many,
// and Debug between.
//
// It serves the clients' layer (package consumer's retried partition
// errors, package producer's failed batches). It holds no lock and logs
// nothing itself: its caller guards a Run as it guards the rest of the
// state it belongs to, and logs at the level Next returns, outside any
// lock a handler might need.
package logrun

import (
	"context"
	"log/slog"
	"time"
)

// Every is how often a failure that keeps coming back is logged at Warn.
// (Tests of its callers pass it on a testing/synctest bubble's clock.)
const Every = 30 * time.Second

// Run is a run of failures of one kind, of one thing (a partition): its
// zero value is no failure yet.
type Run struct {
	key           any
	since, warned time.Time
	n             int64
}

// Next counts one more failure, of kind key (a comparable value: a
// failure of another kind than the run's begins a new run), at now, and
// returns the level to log it at, and the attributes to add to its line:
// first for the first of a run, with none; Warn once every Every while
// the run goes on, with "failing" (the time since its first) and
// "failures" (how many, this one included); Debug otherwise, with none.
func (r *Run) Next(now time.Time, key any, first slog.Level) (slog.Level, []any) {
	if r.n == 0 || key != r.key {
		*r = Run{key: key, since: now, warned: now, n: 1}
		return first, nil
	}
	r.n++
	if now.Sub(r.warned) >= Every {
		r.warned = now
		return slog.LevelWarn, []any{"failing", now.Sub(r.since), "failures", r.n}
	}
	return slog.LevelDebug, nil
}

// End ends the run (the thing answered): the next failure is a first.
func (r *Run) End() { *r = Run{} }

// Log logs msg, with args and the attributes Next adds, at the level Next
// returns, for callers whose logger may be called where they guard r (a
// logger that queues its lines until the lock is let go).
func (r *Run) Log(l *slog.Logger, now time.Time, key any, first slog.Level, msg string, args ...any) {
	level, extra := r.Next(now, key, first)
	l.Log(context.Background(), level, msg, append(args, extra...)...)
}
