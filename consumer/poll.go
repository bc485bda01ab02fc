package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// Poll fetches once from every assigned partition that is not paused. It
// returns a Fetch for each partition that had batches or an error (or
// more than one: see [Fetches]), and advances each partition's position
// past the batches returned.
//
// Poll first resolves the positions set with [Start], [End] or [AtTime]
// (ListOffset) of every assigned partition, paused or not (see Pause).
// Then it sends one long-poll Fetch, which waits up to [FetchMaxWait] for
// [FetchMinBytes]. Partitions take turns at the head of the request, so
// that [FetchMaxBytes] does not starve the last ones.
//
// A Fetch may hold no record to return, so a Poll may return nothing to
// read, its position moved on, while a later one does:
//
//   - The batches a compaction emptied hold no record. They are kept as
//     headers, as Kafka's cleaner keeps them, at the end of a cleaned
//     group or as an idempotent producer's last batch.
//   - Transaction markers (control batches, skipped) hold none to return.
//
// Poll returns early, with what it has (maybe nothing), when Assign, Seek,
// Pause, Resume or Unassign changes what it should fetch. With nothing to
// fetch (nothing assigned, everything paused) it waits up to FetchMaxWait
// for a change and returns no fetches.
//
// Errors of one partition are in its Fetch.Err, as a [*PartitionError],
// and the other partitions are unaffected:
//
//   - Out of range ([log.ErrOffsetOutOfRange]): under ResetEarliest and
//     ResetLatest, Poll moves the position per the policy, logs it, and
//     reports nothing. The log says it at Info for a position below the
//     log start (retention or DeleteRecords overtook the reader), at Warn
//     for one past the log end (the records up to it are gone: a log cut
//     by a crash, or a topic created again under an At position; or were
//     never there), as kgo warns of a position it was consuming from.
//     The new position, Start or End, is looked up by the next Poll,
//     which reads from it. Until then Position reports false, so a Poll
//     that met the reset returns none of the partition's records, where a
//     Java consumer's poll goes on fetching until its timeout. Under ResetNone Poll reports the error, and the partition
//     is left out of fetches until Seek or Assign.
//   - An error Kafka's table (package api) calls not retriable stops the
//     partition in the same way: an invalid request, a topic name the
//     broker refuses (api.ErrInvalidTopic).
//   - An unknown topic or partition (api.ErrUnknownTopicOrPartition,
//     which runnel.ErrUnknownTopic is) where the Client had answered for
//     the position before, or a topic ID the topic no longer has
//     (api.ErrUnknownTopicID), is reported. The topic was deleted, and may
//     be created again, when the offset would name another record or
//     none. It is reported once: if a Records loop ends before yielding
//     it, the next Poll or Records reports it. The position is not kept.
//     Under ResetEarliest and ResetLatest it is reset per the policy,
//     resolved once the partition is back (tried again every
//     RetryBackoff). Under ResetNone the partition is stopped, at its old
//     position, until Seek or Assign.
//   - An error the table calls retriable is not reported: an unknown
//     topic or partition not read yet (a topic not created yet, say), not
//     the leader, a request timed out, a storage error (log.ErrLogFenced).
//     The partition is left out of fetches for RetryBackoff, then tried
//     again, as Kafka's Java consumer and franz-go retry these without
//     telling the application. So is a ListOffset's such error, for the
//     position it was to resolve, and a ListOffset's offset out of range
//     (log.ErrOffsetOutOfRange, which *runnel.Broker answers when the log
//     kept moving under its search: no position is out of range, and the
//     look-up made again finds one). The log tells: the first retry at
//     Info, then one at Warn every 30 s while the errors go on (a
//     partition fenced on its broker, a partition number that does not
//     exist), the others at Debug.
//   - Any other error is reported, and the partition is left out of
//     fetches for RetryBackoff, then tried again: a corrupt batch
//     (record.ErrCorrupt, retriable in the table, but reported by Kafka's
//     consumers too), an error the table does not know. It is reported at
//     every retry. The log tells it at Warn the first time, then every
//     30 s while it comes back the same at the same offset, the others at
//     Debug.
//
// A topic deleted and created again under its name is told from the old
// one by its topic ID (KIP-516). Every fetch names the ID of the topic
// the position is in: the one ListOffset gave with the position it
// resolved (Start, End, AtTime, or a reset), else the one the partition's
// first answer gave. *runnel.Broker answers api.ErrUnknownTopicID once
// the topic has another.
//
// So a topic created again between two fetches, or between the look-up
// of a position and its first fetch, is reported as above, rather than
// read from the old topic's offset. So is a topic deleted, or created
// again, while the position of a partition read in it is being reset
// after an offset out of range (ListOffset, looking up the reset
// position, answers an unknown topic or partition, or another topic ID).
// That is reported once, as api.ErrUnknownTopicID with Offset -1, before
// any record of the new topic, and the position is then resolved in the
// topic there.
//
// What is left: an offset given with At names no topic, and is read in
// the topic that has the name at its first fetch. With a Client that
// gives no topic IDs, a position carries over to the new topic (or, past
// its end, is out of range).
//
// A Poll whose ctx ends while its fetch waits for FetchMinBytes returns
// what the fetch found by then (fewer bytes than FetchMinBytes) with a
// nil error, the positions moved past it. Kafka's consumer's poll, too,
// returns what it has when its timeout passes: a ctx with a timeout
// bounds the wait without losing what was found. Poll returns ctx's error
// when the fetch had found nothing. (A Records loop whose ctx ends yields
// none of it, only ctx's error: see Records.)
//
// A nil ctx is not kgo's PollFetches(nil), which returns what the client
// has buffered without waiting: Poll may panic on it (see the package
// doc). A Poll that answers at once is one under FetchMaxWait(0); one
// whose ctx has a short timeout waits no longer than it (see above).
//
// Errors of Poll itself:
//
//   - [ErrClosed], also when Close interrupts it, and on a closed consumer
//     whatever its ctx.
//   - ctx's error.
//   - the Client's Fetch error. Positions then did not move. The
//     Fetches returned with it hold only partition errors: of the
//     partitions whose position could not be resolved (their ListOffset
//     errors) or whose topic the look-up found gone (see above), and those
//     a Records loop ended before yielding that were kept for this Poll.
//
// A Fetch error Kafka's table calls retriable (but record.ErrCorrupt) is
// not returned. The fetch's partitions are left out of fetches for
// RetryBackoff, and Poll returns what it has, or waits as a Poll with
// nothing to fetch does, returning nothing: up to FetchMaxWait, until a
// partition's backoff ends (the fetch's or an earlier one's), or a
// change.
//
// A closed Client is Poll's error, not a partition's: an error matching
// api.ErrBrokerClosed (runnel.ErrClosed), whether Fetch returns it, one
// partition's answer holds it, or a ListOffset does. No partition is
// stopped and no position moves, and every Poll that asks the Client
// returns it again. Records ends after yielding it.
func (c *Consumer) Poll(ctx context.Context) (Fetches, error) { return c.poll(ctx, true, false, nil) }

// idleWait is how long a fetch of a Records loop waits for a first record
// under FetchMaxWait(0), after a Poll that found nothing (see
// FetchMaxWait): Kafka's default fetch.max.wait.ms, and this package's.
const idleWait = 500 * time.Millisecond

// poll is Poll. When advance is false, positions do not move and each
// Fetch carries its assignment, for the Records iterator to advance. idle
// says that the caller's last poll found nothing: under FetchMaxWait(0),
// this one waits for a first record instead (see waitFor). When woken is
// not nil, it is set to the wakeCtx the poll began with, whose end tells
// of a change made since (see sleep).
func (c *Consumer) poll(ctx context.Context, advance, idle bool, woken *context.Context) (Fetches, error) {
	fs, err := c.pollOnce(ctx, advance, idle, woken)
	if err == nil && len(fs) == 0 && c.isClosed() {
		// Close began while this Poll found nothing, and some way out
		// saw it before its ctx ended (Close ends it through
		// context.AfterFunc, on a goroutine of its own): say so, as
		// Close's doc does. Nothing is lost: no position moved.
		return nil, ErrClosed
	}
	return fs, err
}

// pollOnce is poll, but for a Close that began while it found nothing.
func (c *Consumer) pollOnce(ctx context.Context, advance, idle bool, woken *context.Context) (Fetches, error) {
	if c.isClosed() {
		return nil, ErrClosed // before ctx's error, as every method says
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.isClosed() {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.polls.Add(1)
	wakeCtx := c.wakeCtx
	if woken != nil {
		*woken = wakeCtx
	}
	out := c.heldLocked()
	c.mu.Unlock()
	defer c.polls.Done()

	// pctx ends with ctx, and when the consumer changes or closes.
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(wakeCtx, func() { cancel(context.Cause(wakeCtx)) })
	defer stop()

	failed, err := c.resolve(pctx)
	out = append(out, failed...)
	if err != nil {
		if pctx.Err() != nil {
			return c.interrupted(ctx, out)
		}
		return out, err // the Client is closed
	}
	req, sent, curs, nextRetry := c.request(time.Now(), len(out) > 0, idle)
	if len(sent) == 0 {
		if len(out) > 0 {
			return out, nil
		}
		return c.idle(ctx, pctx, nextRetry, idle)
	}
	resp, err := c.client.Fetch(pctx, req)
	if err != nil {
		if pctx.Err() != nil {
			return c.interrupted(ctx, out)
		}
		if transient(err) && !clientClosed(err) {
			// Retried, as Kafka's consumers retry a failed fetch: its
			// partitions wait RetryBackoff, and the Poll returns what it
			// has, or waits as one that found nothing would.
			retry := c.backOff(sent, curs, err)
			if len(out) > 0 {
				return out, nil
			}
			if !nextRetry.IsZero() && nextRetry.Before(retry) {
				retry = nextRetry // a partition backed off before may be retried first
			}
			return c.idle(ctx, pctx, retry, idle)
		}
		// The partitions whose positions could not be resolved, and the
		// errors held for this Poll, are reported with the failure of
		// the fetch.
		return out, err
	}
	for i := range resp.Partitions {
		if err := resp.Partitions[i].Err; clientClosed(err) {
			// The Client closed during the fetch: its error, not the
			// partition's. No position moves.
			return out, err
		}
	}

	now := time.Now()
	c.mu.Lock()
	defer c.unlock() // lines logged (lockedLog) go out after
	if c.closed.Load() {
		return nil, ErrClosed
	}
	c.fetchFailing.End()
	for i, a := range sent {
		fp, ok := match(&resp, i, a.tp)
		if !ok {
			continue // not answered: fetched next time
		}
		from, cur := req.Partitions[i].Offset, curs[i]
		if c.parts[a.tp] != a || a.cur != cur || cur.pos.Load() != from || a.paused {
			continue // unassigned, moved (maybe back: see cursor) or paused meanwhile
		}
		if fp.Err != nil {
			if f, ok := c.fetchErrorLocked(a, from, fp, now); ok {
				out = append(out, f)
			}
			continue
		}
		a.seen = true
		a.failing.End()
		if a.topicID.IsZero() {
			a.topicID = fp.TopicID
		}
		a.hw, a.hwTopic = fp.HighWatermark, fp.TopicID
		data, next, err := trim(fp.Records, from, fp.HighWatermark, c.cfg.checkCRCs)
		if len(data) == 0 {
			if err != nil {
				out = append(out, c.failLocked(a, from, err, now, *fp))
			}
			continue // an error after good batches is met by the next fetch
		}
		// A Records loop advances positions without mu: the position
		// moves only if it is still where this fetch began, in one
		// compare-and-swap, or a record that loop yielded meanwhile would
		// be returned again.
		if advance && !cur.pos.CompareAndSwap(from, next) {
			continue
		}
		a.retryAt = time.Time{}
		f := Fetch{
			Topic: a.tp.Topic, Partition: a.tp.Partition,
			HighWatermark: fp.HighWatermark, LogStartOffset: fp.LogStartOffset,
			Batches: data, from: from, upTo: next, cur: cur,
		}
		if !advance {
			f.owner, f.seq = a, a.seq
		}
		out = append(out, f)
	}
	return out, nil
}

// interrupted is what a Poll whose context ended returns: ErrClosed,
// ctx's error, or, when it was woken by a change, what it has.
func (c *Consumer) interrupted(ctx context.Context, out Fetches) (Fetches, error) {
	if c.isClosed() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		c.unreported(out) // the errors of out are not returned
		return nil, err
	}
	return out, nil
}

// waitFor returns how long a fetch waits, and for how many bytes: as
// configured (see maxWait), except when the caller's last poll found
// nothing (idle) and fetches answer at once. A Records loop, which never
// returns empty-handed, would then fetch again and again, each answered at
// once, burning a core while the partitions stay idle: its fetch waits
// idleWait instead, for one record, which the broker sends as soon as it
// is appended.
func (c *Consumer) waitFor(idle bool) (time.Duration, int) {
	maxWait := c.maxWait()
	if idle && maxWait == 0 {
		return idleWait, 1
	}
	return maxWait, c.cfg.minBytes
}

// maxWait is how long a fetch may wait: FetchMaxWait, or 0 under
// FetchMinBytes(0), which asks for no bytes and so for no wait, as Kafka's
// fetch.min.bytes=0 does (api.FetchRequest's MinBytes 0, its zero value,
// means 1: only a MaxWait of 0 makes the Client answer at once).
func (c *Consumer) maxWait() time.Duration {
	if c.cfg.minBytes == 0 {
		return 0
	}
	return c.cfg.maxWait
}

// idle waits, with nothing to fetch, until FetchMaxWait (see waitFor)
// passes, a backed off partition may be retried, or something changes.
func (c *Consumer) idle(ctx, pctx context.Context, nextRetry time.Time, idle bool) (Fetches, error) {
	d, _ := c.waitFor(idle)
	if !nextRetry.IsZero() {
		d = min(d, time.Until(nextRetry))
	}
	if c.hooks != nil && c.hooks.idle != nil {
		c.hooks.idle(max(d, 0))
	}
	if d <= 0 {
		return nil, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil, nil
	case <-pctx.Done():
		return c.interrupted(ctx, nil)
	}
}

// resolve looks up the positions of partitions assigned with Start, End
// or AtTime. It returns the Fetches of those that failed, and pctx's error
// if it ended, or the Client's if it is closed (clientClosed: then the
// partition is left unresolved, not failed).
func (c *Consumer) resolve(pctx context.Context) (Fetches, error) {
	type pending struct {
		a   *assignment
		at  Offset
		cur *cursor
	}
	var todo []pending
	now := time.Now()
	c.mu.Lock()
	for _, a := range c.order {
		if a.cur.pos.Load() == unresolved && !a.stopped && !a.retryAt.After(now) {
			todo = append(todo, pending{a, a.at, a.cur})
		}
	}
	c.mu.Unlock()

	var out Fetches
	for _, p := range todo {
		lo, err := c.client.ListOffset(pctx, p.a.tp.Topic, p.a.tp.Partition, p.at.listTimestamp())
		off := lo.Offset
		if pctx.Err() != nil {
			return out, pctx.Err()
		}
		if clientClosed(err) {
			return out, err
		}
		if err == nil && off < 0 {
			err = fmt.Errorf("%w: ListOffset returned offset %d", api.ErrInvalidRequest, off)
		}
		c.mu.Lock()
		// Another Poll or Records loop may have resolved the position
		// meanwhile, and read on from it: then this answer is stale. (Only
		// mu's holders move a position away from unresolved.)
		if c.parts[p.a.tp] == p.a && p.a.cur == p.cur && p.cur.pos.Load() == unresolved {
			switch {
			case err != nil && !p.a.topicID.IsZero() && errors.Is(err, api.ErrUnknownTopicOrPartition):
				// The topic whose ID is known (kept through a reset
				// after an offset out of range) is gone.
				err = fmt.Errorf("%w: %s: no topic has ID %s any more (%w)", api.ErrUnknownTopicID, p.a.tp.Topic, p.a.topicID, err)
				out = append(out, c.replacedLocked(p.a, err, time.Now()))
			case err != nil && (transient(err) || errors.Is(err, log.ErrOffsetOutOfRange)):
				// An offset out of range is no position's here: the log
				// moved under the look-up's search (*runnel.Broker's
				// ListOffset says so), which the same look-up made again
				// gets past.
				c.backOffLocked(p.a, unresolved, err, time.Now())
			case err != nil:
				out = append(out, c.failLocked(p.a, unresolved, err, time.Now(), noOffsets))
			default:
				p.a.failing.End()
				if f, replaced := c.resolvedLocked(p.a, p.at, lo); replaced {
					out = append(out, f)
				}
			}
		}
		c.unlock()
	}
	return out, nil
}

// resolvedLocked sets a's unresolved position to the offset ListOffset
// found for at, and its topic ID to the one ListOffset gave with it: the
// ID of the topic the offset is in, which the next fetch names, so that a
// topic deleted and created again since the look-up is answered with
// api.ErrUnknownTopicID (and the position reset or stopped, see Poll)
// rather than read from this offset. An ID known before that differs (kept
// through a reset after an offset out of range) means the topic was
// created again before the look-up: the offset is the new topic's, and
// the new ID is the one to name; the partition the consumer read is gone
// all the same, which it reports (see replacedLocked), with true. Zero (a
// Client that gives none) is taken as it is: the first fetch that answers
// gives the ID then.
func (c *Consumer) resolvedLocked(a *assignment, at Offset, lo api.ListedOffset) (Fetch, bool) {
	var f Fetch
	replaced := !a.topicID.IsZero() && !lo.TopicID.IsZero() && a.topicID != lo.TopicID
	if replaced {
		c.lockedLog.Info("topic created again: position resolved in the new topic", "topic", a.tp.Topic,
			"partition", a.tp.Partition, "old_topic_id", a.topicID.String(), "topic_id", lo.TopicID.String())
		err := fmt.Errorf("%w: %s is not topic %s any more (it is %s: deleted and created again while the position was reset)",
			api.ErrUnknownTopicID, a.tp.Topic, a.topicID, lo.TopicID)
		f = c.replacedLocked(a, err, time.Now())
		a.retryAt = time.Time{} // the new position is there to fetch
	}
	a.cur.pos.Store(lo.Offset)
	a.seen = true
	a.topicID = lo.TopicID
	switch {
	case at.kind == kindEnd:
		a.hw, a.hwTopic = lo.Offset, lo.TopicID // the end is the high watermark, as of the look-up
	case lo.Offset > a.hw:
		a.hw = -1 // see hw
	case !lo.TopicID.IsZero() && !a.hwTopic.IsZero() && lo.TopicID != a.hwTopic:
		// The topic was created again since hw was seen (a Seek
		// forgot the ID the position was read in): hw was the old
		// topic's.
		a.hw = -1
	}
	c.lockedLog.Debug("resolved offset", "topic", a.tp.Topic, "partition", a.tp.Partition, "at", at.String(), "offset", lo.Offset)
	return f, replaced
}

// replacedLocked reports err, an api.ErrUnknownTopicID, for a whose
// position, reset after an offset out of range, was being looked up when
// the topic it had been read in turned out to be gone (resolve found the
// topic deleted, or created again): the look-up is the reset, so the
// error is reported once (held if a Records loop ends before yielding
// it, see unreported), as that of a partition a fetch finds gone is (see
// fetchErrorLocked), and the topic ID is forgotten: the position will be
// the topic's there then. So is the high watermark, the old topic's.
func (c *Consumer) replacedLocked(a *assignment, err error, now time.Time) Fetch {
	a.topicID = log.TopicID{}
	a.hw = -1 // the old topic's
	f := c.failLocked(a, unresolved, err, now, noOffsets)
	f.reset = true
	return f
}

// noOffsets is the answer for the error of a look-up (ListOffset), which
// tells no high watermark or log start: -1 for both, as the broker
// answers them for a partition that is not there (Kafka's
// INVALID_HIGH_WATERMARK and INVALID_LOG_START_OFFSET), not 0, which
// reads as an empty partition's (see Fetch.HighWatermark).
var noOffsets = api.FetchedPartition{HighWatermark: -1, LogStartOffset: -1}

// request builds the fetch request, rotating which partition comes first,
// and returns the assignment of each of its partitions, in its order, with
// the assignment's cursor when the request was made. hurry makes the
// broker answer at once; idle is poll's (see waitFor). It also returns
// when the next backed-off partition may be retried (zero if none is).
func (c *Consumer) request(now time.Time, hurry, idle bool) (*api.FetchRequest, []*assignment, []*cursor, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	maxWait, minBytes := c.waitFor(idle)
	req := &api.FetchRequest{MaxWait: maxWait, MinBytes: minBytes, MaxBytes: c.cfg.maxBytes}
	var sent []*assignment
	var curs []*cursor
	var nextRetry, nextLookUp time.Time
	due := false // a position is to be looked up now (see below)
	for _, a := range c.order {
		// A paused partition is not fetched, but a position of it still
		// to be looked up is (see Pause): the backoff of a failed look-up
		// ends a wait as a fetch's does.
		if a.stopped || a.paused && a.cur.pos.Load() != unresolved {
			continue
		}
		if a.retryAt.After(now) {
			if nextRetry.IsZero() || a.retryAt.Before(nextRetry) {
				nextRetry = a.retryAt
			}
			if a.cur.pos.Load() == unresolved && (nextLookUp.IsZero() || a.retryAt.Before(nextLookUp)) {
				nextLookUp = a.retryAt
			}
			continue
		}
		pos := a.cur.pos.Load()
		if pos < 0 {
			// A look-up due now that this Poll's resolve did not make:
			// its backoff ended while resolve looked up others, or
			// RetryBackoff is 0. It is not left to wait for the fetch:
			// the fetch answers at once, and the next Poll makes it.
			due = true
			continue
		}
		req.Partitions = append(req.Partitions, api.FetchPartition{
			Topic: a.tp.Topic, TopicID: a.topicID, Partition: a.tp.Partition, Offset: pos, MaxBytes: c.cfg.maxPartBytes,
		})
		sent = append(sent, a)
		curs = append(curs, a.cur)
	}
	if k := len(sent); k > 0 {
		// Each partition fetched comes first in turn: the rotation runs
		// over these only, so a paused or backed-off partition's turn
		// does not go to the one after it as well.
		c.rotate = (c.rotate + 1) % k
		rotateLeft(req.Partitions, c.rotate)
		rotateLeft(sent, c.rotate)
		rotateLeft(curs, c.rotate)
	}
	if due {
		hurry, nextRetry = true, now
	}
	switch {
	case hurry:
		req.MaxWait = 0
	case maxWait > c.maxWait() && !nextRetry.IsZero():
		// Waiting for records (waitFor) does not hold back a partition
		// that FetchMaxWait(0) would have retried in time.
		req.MaxWait = min(maxWait, max(nextRetry.Sub(now), 0))
	case !nextLookUp.IsZero():
		// Nor does the long poll of other partitions hold back a
		// position's look-up, backed off after a retriable error: a
		// ListOffset is a request of its own, which Kafka's consumer
		// sends beside the fetch in flight, not after it (a fetch's
		// retry waits for the fetch under way: see RetryBackoff).
		req.MaxWait = min(maxWait, max(nextLookUp.Sub(now), 0))
	}
	return req, sent, curs, nextRetry
}

// match finds the answer for tp: at index i, where the broker puts it, or
// anywhere.
func match(resp *api.FetchResponse, i int, tp api.TopicPartition) (*api.FetchedPartition, bool) {
	ps := resp.Partitions
	if i < len(ps) && ps[i].Topic == tp.Topic && ps[i].Partition == tp.Partition {
		return &ps[i], true
	}
	for j := range ps {
		if ps[j].Topic == tp.Topic && ps[j].Partition == tp.Partition {
			return &ps[j], true
		}
	}
	return nil, false
}

// fetchErrorLocked handles a partition's fetch error: an out-of-range
// position is reset per the policy (and nothing is reported); a partition
// gone from under a position it had answered for (its topic deleted, and
// maybe created again: the offset meant a record of the old one) is
// reported, and then reset per the policy, or stopped under ResetNone;
// anything else is reported.
func (c *Consumer) fetchErrorLocked(a *assignment, from int64, fp *api.FetchedPartition, now time.Time) (Fetch, bool) {
	outOfRange := errors.Is(fp.Err, log.ErrOffsetOutOfRange)
	gone := a.seen && errors.Is(fp.Err, api.ErrUnknownTopicOrPartition) || errors.Is(fp.Err, api.ErrUnknownTopicID)
	switch {
	case errors.Is(fp.Err, api.ErrUnknownTopicOrPartition) || errors.Is(fp.Err, api.ErrUnknownTopicID):
		// No such partition: the high watermark seen was of one that is
		// gone, also when the position was not read since a move (not
		// gone then, but retried).
		a.hw = -1
	case outOfRange && fp.HighWatermark >= 0:
		// The partition's own, as of the answer, whatever the policy:
		// below the one last seen if the log was cut under the position
		// (which ResetNone leaves there: Lag is negative then).
		a.hw, a.hwTopic = fp.HighWatermark, fp.TopicID
	case outOfRange:
		// None given (Kafka's broker answers an offset out of range with
		// -1): the one last seen may be above the log end now.
		a.hw = -1
	}
	if !outOfRange && !gone && transient(fp.Err) {
		c.backOffLocked(a, from, fp.Err, now)
		return Fetch{}, false
	}
	if (!outOfRange && !gone) || (outOfRange && c.cfg.reset == ResetNone) {
		return c.failLocked(a, from, fp.Err, now, *fp), true
	}
	if gone && c.cfg.reset == ResetNone {
		a.stopped = true
		return c.failLocked(a, from, fp.Err, now, *fp), true
	}
	// Reset below: the error is reported once, as the next fetch, from
	// the new position, will not find it again (see unreported).
	// As for records (see poll): a Records loop that moved the position
	// meanwhile wins.
	if !a.cur.pos.CompareAndSwap(from, retired) {
		return Fetch{}, false
	}
	a.moveLocked(unresolved)
	at := c.cfg.reset.offset()
	a.at = at
	a.seen = false
	if gone {
		// The ID names a topic that is no more: the position, once
		// resolved, will name the topic there then (and the high
		// watermark, the old topic's, is forgotten above).
		a.topicID = log.TopicID{}
	}
	if outOfRange {
		args := []any{"topic", a.tp.Topic, "partition", a.tp.Partition,
			"offset", from, "log_start_offset", fp.LogStartOffset, "high_watermark", fp.HighWatermark, "to", at.String()}
		if fp.HighWatermark >= 0 && from > fp.HighWatermark {
			// Past the end: the records up to the position are gone (a
			// log cut by a crash or a truncation, or a topic created
			// again under a position given with At), or were never
			// there. kgo logs an out-of-range position it had consumed
			// at Warn; below the start it is retention overtaking a
			// slow reader, which the Java consumer and kgo's first
			// fetch log at Info.
			c.lockedLog.Warn("offset out of range past the log end: resetting", args...)
		} else {
			c.lockedLog.Info("offset out of range: resetting", args...)
		}
		return Fetch{}, false
	}
	c.lockedLog.Info("partition gone: resetting once it is back", "topic", a.tp.Topic, "partition", a.tp.Partition,
		"offset", from, "to", at.String(), "err", fp.Err)
	f := c.failLocked(a, from, fp.Err, now, *fp)
	f.reset = true
	return f, true
}

// backOffLocked leaves a partition out of fetches for RetryBackoff after
// a transient error, which it logs (see failing) and does not report (see
// transient).
func (c *Consumer) backOffLocked(a *assignment, offset int64, err error, now time.Time) {
	a.retryAt = now.Add(c.cfg.backoff)
	a.failing.Log(c.lockedLog, now, nil, slog.LevelInfo, "partition error: retrying", "topic", a.tp.Topic, "partition", a.tp.Partition,
		"offset", offset, "backoff", c.cfg.backoff, "err", err)
}

// reportedKey is the kind of a reported error's run of logs (see
// assignment.reported): one that comes back at the same offset with the
// same text, as a batch that stays corrupt does, is the same run.
type reportedKey struct {
	offset int64
	text   string
}

// backOff backs off the partitions of a fetch that failed as a whole
// with a transient error (those still at the cursor the fetch was made
// from), and returns when they may be fetched again.
func (c *Consumer) backOff(sent []*assignment, curs []*cursor, err error) time.Time {
	now := time.Now()
	c.mu.Lock()
	defer c.unlock()
	for i, a := range sent {
		if c.parts[a.tp] == a && a.cur == curs[i] {
			a.retryAt = now.Add(c.cfg.backoff)
		}
	}
	c.fetchFailing.Log(c.lockedLog, now, nil, slog.LevelInfo, "fetch failed: retrying", "partitions", len(sent), "backoff", c.cfg.backoff, "err", err)
	return now.Add(c.cfg.backoff)
}

// failLocked reports a partition's error and leaves the partition out of
// fetches: until Seek or Assign when the error will not go away by
// itself, for RetryBackoff otherwise.
func (c *Consumer) failLocked(a *assignment, offset int64, err error, now time.Time, fp api.FetchedPartition) Fetch {
	if permanent(err) {
		a.stopped = true
	} else {
		a.retryAt = now.Add(c.cfg.backoff)
	}
	args := []any{"topic", a.tp.Topic, "partition", a.tp.Partition, "offset", offset, "stopped", a.stopped, "err", err}
	if a.stopped {
		c.lockedLog.Warn("partition error", args...)
	} else {
		a.reported.Log(c.lockedLog, now, reportedKey{offset, err.Error()}, slog.LevelWarn, "partition error", args...)
	}
	return Fetch{
		Topic: a.tp.Topic, Partition: a.tp.Partition,
		HighWatermark: fp.HighWatermark, LogStartOffset: fp.LogStartOffset,
		Err:   &PartitionError{Topic: a.tp.Topic, Partition: a.tp.Partition, Offset: offset, Err: err},
		owner: a, seq: a.seq, // for a Records loop that ends before yielding it (see unreported)
	}
}

// unreported keeps for the next Poll the errors in fs that a Records loop
// ended before yielding (those whose owner is still set), or that a Poll
// whose ctx ended does not return. An error that stopped its partition is
// kept by undoing the stop: stopped, with nobody told why, the partition
// would never be fetched again; the next Poll fetches it again and finds
// the error again. An error that came with a reset of the position (the
// partition gone: see fetchErrorLocked) would not be found again from the
// new position: it is held, and the next Poll returns it (heldLocked).
// Other errors left their partition backed off, and the next fetch after
// the backoff finds them again if they remain. A partition whose position
// changed since (see seq: Seek, Assign) is left as it is.
func (c *Consumer) unreported(fs Fetches) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range fs {
		f := &fs[i]
		a := f.owner
		if f.Err == nil || a == nil || c.parts[a.tp] != a || a.seq != f.seq {
			continue
		}
		switch {
		case f.reset:
			a.held = append(a.held, *f)
		case a.stopped:
			a.stopped = false
			a.retryAt = time.Time{}
		}
	}
}

// heldLocked returns, and forgets, the errors unreported held for the
// next Poll.
func (c *Consumer) heldLocked() Fetches {
	var out Fetches
	for _, a := range c.order {
		out = append(out, a.held...) // a Seek or Assign would have dropped them
		a.held = nil
	}
	return out
}

// permanent reports whether err cannot go away by retrying the same
// request: Kafka's error table (package api) knows it and calls it not
// retriable. Errors the table does not know (a network error of some
// Client, say) are not permanent: they are retried. A partition's
// permanent error stops the partition (failLocked); the Client's own
// (Poll's) ends the Records iterator.
func permanent(err error) bool {
	return api.Code(err) != -1 && !api.IsRetriable(err)
}

// transient reports whether err is one that Kafka's consumers retry
// without telling the application (the Java consumer's FetchCollector
// and OffsetFetcher, franz-go's source, which strips retriable partition
// errors from its fetches): one Kafka's table (package api) calls
// retriable — an unknown topic or partition, not the leader, a request
// timed out, a storage error — but for a corrupt batch (CORRUPT_MESSAGE,
// retriable in the table), which both report. The consumer retries a
// transient error after RetryBackoff and reports nothing; a partition
// gone from under a position it had read (see fetchErrorLocked) is
// reported all the same.
func transient(err error) bool {
	return api.IsRetriable(err) && api.Code(err) != api.Code(record.ErrCorrupt)
}

// clientClosed reports whether err says that the Client is closed for
// good: it matches api.ErrBrokerClosed (runnel.ErrClosed of a closed
// *runnel.Broker; BROKER_NOT_AVAILABLE, not retriable, in Kafka's table).
// Wherever it comes — Fetch's error, one partition's answer in a Fetch, a
// ListOffset — it is about the Client and not about a partition, so Poll
// returns it as its own error and stops no partition.
func clientClosed(err error) bool { return errors.Is(err, api.ErrBrokerClosed) }

// trim returns the whole batches of data that hold records from from
// below hw: a sub-slice of data, the offset after it, and the error of
// the batch it stopped at, if any (a batch cut short after whole ones is
// not an error: a fetch's byte limit may cut it). check verifies CRCs
// and headers; unchecked, a batch whose last offset lies below its base
// is refused all the same, and so, checked or not, is one whose last
// offset is math.MaxInt64 (no offset after it), so that the position
// never moves back.
// Nothing is readable from a position at or above hw (a Seek past it):
// whatever the Client sent, trim keeps nothing, so that the position does
// not move (a batch that straddles hw and holds from would take it back
// to hw, and the records below it would be returned later).
func trim(data []byte, from, hw int64, check bool) (kept []byte, next int64, err error) {
	if from >= hw {
		return nil, from, nil
	}
	start, end := -1, 0
	next = from
	for pos := 0; pos < len(data); {
		b, perr := record.Parse(data[pos:], int64(pos))
		if perr == nil && check {
			perr = b.Validate(int64(pos))
		}
		if perr == nil && b.LastOffsetDelta() < 0 {
			// Unchecked, the batch is the Client's word, but offsets
			// that run backwards would move the position back:
			// refused as the check would refuse them.
			perr = &record.CorruptError{Position: int64(pos), Reason: "last offset below the base offset"}
		} else if perr == nil && b.BaseOffset() >= math.MaxInt64-int64(b.LastOffsetDelta()) {
			// A last offset at (or past) math.MaxInt64 has no offset
			// after it: NextOffset would wrap and move the position
			// back, checked or not.
			perr = &record.CorruptError{Position: int64(pos), Reason: "no offset after the last offset"}
		}
		if perr != nil {
			if start < 0 || !errors.Is(perr, record.ErrTruncated) {
				err = perr
			}
			break
		}
		if b.BaseOffset() >= hw {
			break
		}
		if start >= 0 && b.BaseOffset() < next {
			err = &record.CorruptError{Position: int64(pos), Reason: "batch offsets out of order"}
			break
		}
		if start < 0 && b.NextOffset() <= from {
			pos += len(b)
			continue
		}
		if start < 0 {
			start = pos
		}
		end = pos + len(b)
		next = min(b.NextOffset(), hw)
		pos = end
	}
	if start < 0 {
		return nil, from, err
	}
	return data[start:end:end], next, err
}

// rotateLeft moves s's first r elements to its end, keeping the order of
// both parts.
func rotateLeft[T any](s []T, r int) {
	slices.Reverse(s[:r])
	slices.Reverse(s[r:])
	slices.Reverse(s)
}
