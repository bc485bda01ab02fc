package consumer

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/runnel/runnel/record"
)

// Records polls (see Poll) and yields the records of the assigned,
// unpaused partitions, each partition in offset order. It goes on until
// ctx ends, the consumer is closed, or the Client fails for good (see
// below).
//
// When ctx ends, Records yields ctx's error once, as (nil, ctx.Err()),
// and ends, also when ctx had ended before the call. That is what Poll
// returns then: context.Canceled or context.DeadlineExceeded. When the
// consumer is closed, it ends without an error. Either way it ends at
// once: the rest of a fetch is left for the next Poll or Records.
//
// A loop that runs until shutdown thus meets ctx's error last. It tells
// it from a failure by its ctx (err != nil && ctx.Err() != nil), as with
// kgo's fetches and database/sql's Rows.Err. errors.Is(err,
// context.Canceled) alone misses the context.DeadlineExceeded of a ctx
// whose time is up. A loop cut short by its ctx is never mistaken for one
// that read everything.
//
// A partition's position advances with each record yielded, and breaking
// out of the loop loses nothing. Position inside the loop body is the
// offset after the record in hand. For the last record of a fetch, that
// is the end of the fetch, past the control batches and compacted gaps
// after the record, so that Lag is 0 there once the fetch reached the
// high watermark.
//
// The next Poll or Records goes on from there, and reports the partition
// errors of the fetch that the loop did not yield:
//
//   - one that stops its partition is found again;
//   - that of a partition found gone, whose position was reset (see
//     Poll), was kept for it, and is reported once;
//   - others are found again if they remain after their partition's
//     backoff.
//
// A Seek or Assign of the partition in between drops its error.
//
// Seek, Assign, Unassign or Pause of a partition, and Close, from the
// loop body or another goroutine, take effect at its next record. Once
// the call has returned, no record fetched before it is yielded, also
// when a Seek or Assign gives the offset the loop is at, which may be
// another topic's (the topic deleted and created again). A record the
// loop took before the call (Position is past it) may still be on its way
// to the loop body.
//
// Nor is a partition error yielded after a Seek, Assign or Unassign of
// its partition if it was fetched before the call, or met after the call
// in what was fetched before it (a record that does not decode). The Java
// consumer discards such a stale answer too. One fetched before a Pause
// is yielded: the error stopped or reset the partition before the Pause.
//
// The loop body may call any of the consumer's methods, Poll and Records
// too. A Poll, or a nested Records loop (that the body breaks out of),
// goes on from the positions the loop has reached. The loop then goes on
// past what they returned, dropping what it had fetched of those
// partitions as after a Seek, so that each record is returned once, in
// offset order, across them all.
//
// A loop body that panics ends the loop as a break does, and the panic
// goes on to the caller. The record in hand counts as yielded; the
// partition errors not yielded are kept for the next Poll or Records.
//
// Errors are yielded as (nil, err), and iteration goes on unless the loop
// breaks. So range over both: a loop over the records alone, for rec :=
// range c.Records(ctx) (the shape of kgo's Fetches.RecordsAll, an
// iter.Seq), compiles, drops the errors and gets a nil rec for each, the
// last, ctx's, too. They are:
//
//   - a partition's error, as a [*PartitionError] (see Poll for which
//     errors stop a partition and which retry it after RetryBackoff).
//   - a record that cannot be decoded, as a *PartitionError matching
//     record.ErrCorrupt. The partition stays at that record and is retried
//     after RetryBackoff: Seek past it to skip it.
//   - a failed Poll's error. The errors Kafka's table calls retriable are
//     retried by Poll without a word (see Poll).
//
// After a Poll's error, Records ends if the error is permanent (Kafka's
// table, package api, knows it and calls it not retriable) or matches
// api.ErrBrokerClosed, which is runnel.ErrClosed (the broker was closed
// under the consumer), whatever else it matches. Otherwise it waits
// RetryBackoff and polls again: an error the table does not know, such
// as a network error of a remote Client.
//
// A Seek, Assign, Unassign, Pause or Resume made after that Poll began
// ends that wait, as a seek ends a kgo source's backoff after a failed
// fetch: the loop polls again at once, from the new positions. That holds
// whether the call comes from another goroutine, during the wait or
// before it, while the loop body handles the error, or from the body
// itself. (A body that seeks at each such error thus polls again at once
// each time.)
//
// Records are as [Fetch.Records] describes: each a new *record.Record the
// caller may keep, with Key and Value valid as long as it is referenced.
//
// Under FetchMaxWait(0), a loop whose partitions have nothing new does
// not spin: see [FetchMaxWait].
func (c *Consumer) Records(ctx context.Context) iter.Seq2[*record.Record, error] {
	return func(yield func(*record.Record, error) bool) {
		refused := false // the loop body broke out
		body := func(r *record.Record, err error) bool {
			refused = !yield(r, err)
			return !refused
		}
		if !c.records(ctx, body) || refused {
			return
		}
		// A zero Consumer is closed too (isClosed): its loop ends as a
		// closed consumer's does.
		if err := ctx.Err(); err != nil && !c.isClosed() {
			yield(nil, err) // the last: it ends the loop whatever the body answers
		}
	}
}

// records is Records but for ctx's error at the end. It returns false
// when the loop ended for good after a Poll's error, or where it sees
// yield answer false; true when ctx ended or the consumer closed, and
// when yieldFetch stopped, which may also be yield's false: the caller
// notes that itself.
func (c *Consumer) records(ctx context.Context, yield func(*record.Record, error) bool) bool {
	// The fetches not yet yielded while the loop body runs: should it
	// panic, they are kept as a break keeps them (see unreported).
	var rest Fetches
	defer func() {
		if rest != nil {
			c.unreported(rest)
		}
	}()
	idle := false // the last Poll found nothing (see waitFor)
	for ctx.Err() == nil {
		var woken context.Context // the changes as of the Poll (see sleep)
		fs, err := c.poll(ctx, false, idle, &woken)
		if err != nil {
			if errors.Is(err, ErrClosed) || ctx.Err() != nil {
				c.unreported(fs)
				return true
			}
			for i := range fs { // positions that could not be resolved
				rest = fs[i:]
				if ctx.Err() != nil || c.closed.Load() {
					return true // at once (the deferred call keeps rest)
				}
				rest = fs[i+1:]
				if fs[i].Err != nil && !c.left(&fs[i]) && !yield(nil, fs[i].Err) {
					return false // the deferred call keeps rest
				}
			}
			rest = nil
			if ctx.Err() != nil || c.closed.Load() {
				return true
			}
			if !yield(nil, err) || permanent(err) || clientClosed(err) {
				return false
			}
			if !c.sleep(ctx, c.cfg.backoff, woken) {
				return true
			}
			continue
		}
		idle = len(fs) == 0
		for i := range fs {
			rest = fs[i:]
			if !c.yieldFetch(ctx, &fs[i], yield) {
				return true // the deferred call keeps rest: fs[i] too, if its error was not yielded
			}
		}
		rest = nil
	}
	return true
}

// yieldFetch yields f's records, advancing f's partition past each, and
// reports whether the caller asked to go on: false also once ctx has
// ended or the consumer closed, so that the loop ends at once, leaving the
// rest of the fetch to the next Poll.
func (c *Consumer) yieldFetch(ctx context.Context, f *Fetch, yield func(*record.Record, error) bool) bool {
	if ctx.Err() != nil || c.closed.Load() {
		return false
	}
	if f.Err != nil {
		if c.left(f) {
			f.owner = nil
			return true // see Records: an error of a position left is dropped
		}
		f.owner = nil // yielded: not for unreported
		return yield(nil, f.Err)
	}
	a, cur := f.owner, f.cur
	t := taker{c: c, ctx: ctx, cur: cur, yield: yield, pos: f.from}
	stopped, err := f.scan(t.hold, func(error) bool { return false }) // stop there, retry after a backoff
	if t.held != nil && !stopped && !t.ended && !t.halted {
		to := t.held.Offset + 1
		if err == nil && f.upTo > to {
			to = f.upTo
		}
		stopped = !t.take(t.held, to)
	}
	pos := t.pos
	switch {
	case t.ended:
		return false
	case t.halted:
		return true
	case stopped:
		return false
	case err != nil:
		// Met after the loop body's last record: as a record would not be,
		// the error is not yielded once ctx ended or the consumer closed
		// (the position stays at the bad record, for the next Poll), nor
		// once the body left the partition (see Records).
		if ctx.Err() != nil || c.closed.Load() {
			return false
		}
		if c.left(f) {
			return true
		}
		c.mu.Lock()
		if c.parts[a.tp] == a && a.cur == cur && cur.pos.Load() == pos {
			a.retryAt = time.Now().Add(c.cfg.backoff)
		}
		c.mu.Unlock()
		return yield(nil, err)
	}
	// Past control batches and compacted gaps, to the end of the fetch.
	cur.pos.CompareAndSwap(pos, f.upTo)
	return true
}

// taker yields the records of a fetch for yieldFetch, advancing the
// partition's position past each: a struct, not closures, as a closure
// loads every variable it captures at each call, once per record.
type taker struct {
	c     *Consumer
	ctx   context.Context
	cur   *cursor // the partition's, when the fetch was made
	yield func(*record.Record, error) bool
	pos   int64 // where take last moved the position (from the fetch's start)
	// held is the record decoded last and not yet taken: each record is
	// taken once the next is decoded (or the fetch ends), so that the
	// last one is known.
	held   *record.Record
	halted bool // the partition moved, went or paused under us
	ended  bool // ctx ended, or the consumer closed
}

// hold is scan's fn: it takes the record held (past it), and holds r.
func (t *taker) hold(r *record.Record, _ error) bool {
	h := t.held
	t.held = r
	return h == nil || t.take(h, h.Offset+1)
}

// take yields r, advancing the position to to: past r, or, for the
// fetch's last record, to the end of the fetch, past the control batches
// and compacted gaps after it, so that Lag is 0 there once the fetch
// reached the high watermark (see Lag).
func (t *taker) take(r *record.Record, to int64) bool {
	if t.ctx.Err() != nil || t.c.closed.Load() {
		t.ended = true
		return false
	}
	if h := t.c.hooks; h != nil && h.beforeAdvance != nil {
		h.beforeAdvance(r)
	}
	// The record is taken here, or the partition changed (Seek, Assign,
	// a reset, Pause, Unassign, Close: see cursor).
	if !t.cur.pos.CompareAndSwap(t.pos, to) {
		t.halted = true
		return false
	}
	t.pos = to
	return t.yield(r, nil)
}

// left reports whether the partition of f's error was unassigned, or
// given another position (Seek, Assign), since the error was found (or,
// for a decoding error, since f was fetched): the
// error is about a position the application has left, and a Records
// loop drops it, as Poll drops the answer of a partition changed during
// its fetch (and as unreported does).
func (c *Consumer) left(f *Fetch) bool {
	a := f.owner
	if a == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.parts[a.tp] != a || a.seq != f.seq
}

// sleep waits d, and reports false if ctx ended or the consumer closed
// first. When woken is not nil (a wakeCtx taken before the wait), a
// change of what Poll fetches since it was taken (Assign, Seek, Pause,
// Resume, Unassign: see wakeLocked) ends the wait too, at once if one
// came before the wait began, and sleep reports true.
func (c *Consumer) sleep(ctx context.Context, d time.Duration, woken context.Context) bool {
	c.mu.Lock()
	closed, wakeCtx := c.closed.Load(), c.wakeCtx
	c.mu.Unlock()
	if closed {
		return false
	}
	if woken != nil {
		wakeCtx = woken
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		case <-wakeCtx.Done():
			if c.isClosed() {
				return false
			}
			if woken != nil {
				return true
			}
			c.mu.Lock()
			wakeCtx = c.wakeCtx
			c.mu.Unlock()
		}
	}
}
