package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/logrun"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// send delivers one batch: it drops the records whose ctx has ended,
// seals it (producer id, sequence numbers, compression), sends it,
// retries retriable errors with backoff until the batch's delivery
// deadline, and completes its records. timer is the calling goroutine's,
// reused for backoffs.
func (pp *partition) send(b *batch, timer **time.Timer, dl *deadlines) {
	p := pp.p
	deadline := p.deadlineOf(b)
	b.unwatch() // no longer lingering
	var last error
	reseal := false // the last pass only gave its place back to seal again
	for try := 0; ; try++ {
		if try > 0 && !reseal {
			d := p.backoff(try)
			if left := time.Until(deadline); d > left {
				d = left
			}
			p.sleep(d, timer)
		}
		if p.closed.Load() {
			pp.giveUp(b, closedError(last))
			return
		}
		if !time.Now().Before(deadline) {
			pp.giveUp(b, timeoutError(b, p.cfg.deliveryTimeout, last))
			return
		}
		if !b.sent && b.dropEnded() && b.sealed {
			pp.unseal(b)
		}
		if b.live() == 0 {
			pp.dropAll(b)
			return
		}
		if !b.sealed {
			if err := pp.seal(b, dl, deadline); err != nil {
				// Past the deadline (a producer id not taken by then),
				// the next pass fails the batch with ErrDeliveryTimeout.
				if api.IsRetriable(err) || p.closed.Load() || !time.Now().Before(deadline) {
					last = cutShort(err, last, deadline)
					p.cfg.logger.Debug("retrying producer id", "err", err)
					// A failed seal is retried after the backoff, also
					// when this pass came at once to seal again: else a
					// producer id whose look-up keeps failing at once
					// would be asked for in a busy loop.
					reseal = false
					continue
				}
				pp.giveUp(b, err)
				return
			}
			if !b.sent && b.dropEnded() {
				// Records' ctxs ended while the batch was sealed (it may
				// have waited for its producer id): seal it again without
				// them (or drop it), at once, from the top, as after a
				// wait for a place among the requests in flight (below).
				// With no ctx that may end, dropEnded costs a compare.
				pp.unseal(b)
				reseal = true
				continue
			}
		} else {
			copy(b.data, b.hdr[:]) // the broker rewrote offsets in place
		}
		reseal = false
		pp.req.Batches = b.data
		// The attempt ends at the delivery deadline, so that a request
		// the broker sits on (an fsync that hangs, say) cannot hold the
		// promise past it.
		attempt := dl.start(deadline)
		var (
			resp api.ProduceResponse
			ack  api.Ack
			err  error
		)
		sent := true
		late := false     // the deadline passed while the batch waited for a place
		var rest []*batch // buffered before the look-up that found the partition gone
		if pp.pipe != nil {
			waited := pp.pipe.acquire()
			switch {
			case attempt.Err() != nil:
				// The deadline passed, or Close came, while the batch
				// waited for a place: it was not sent.
				err, sent = attempt.Err(), false
			case waited && !time.Now().Before(deadline):
				// The deadline passed while it waited, and the timer that
				// ends attempt has not run yet (its goroutine may run
				// after this one): not sent either.
				err, sent, late = context.DeadlineExceeded, false, true
			case waited && !b.sent && b.dropEnded():
				// Records' ctxs ended while the batch, sealed, waited for
				// a place: give the place back and seal it again without
				// them (or drop it), at once, from the top.
				pp.pipe.release()
				dl.stop()
				pp.req.Batches = nil
				pp.unseal(b)
				reseal = true
				continue
			default:
				b.sent = true
				b.attempts++
				b.refusals = pp.refusals.Load()
				resp, ack, err = pp.pipe.client.ProduceAsync(attempt, &pp.req)
			}
		} else {
			b.sent = true
			b.attempts++
			b.refusals = pp.refusals.Load()
			resp, err = p.client.Produce(attempt, &pp.req)
		}
		expired := err != nil && (attempt.Err() != nil || late) && p.ctx.Err() == nil
		dl.stop()
		pp.req.Batches = nil
		if err != nil && pp.pipe != nil {
			pp.pipe.release()
		}
		if err != nil {
			pp.noteRefusal(err)
		}
		switch {
		case err == nil && pp.pipe != nil:
			pp.delivered(inflight{b: b, resp: resp, ack: ack}, dl)
			return
		case err == nil:
			pp.succeed(b, resp)
			return
		case errors.Is(err, api.ErrDuplicateSequence):
			// The broker has the batch, without telling where.
			pp.settle()
			pp.succeed(b, api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1})
			return
		}
		prev := last
		last = err
		b.earlier = b.unsure
		if sent && !refused(err) {
			b.unsure = true
		}
		switch {
		case expired && !sent:
			pp.giveUp(b, timeoutError(b, p.cfg.deliveryTimeout, withBefore(errors.New("the deadline passed while it waited for a place among the requests in flight"), prev)))
			return
		case expired:
			// The broker may have appended it: giveUp takes a new
			// producer id if it is unsure.
			pp.giveUp(b, timeoutError(b, p.cfg.deliveryTimeout, withBefore(fmt.Errorf("the request was cut short at the deadline (%v)", err), prev)))
			return
		case p.closed.Load():
			continue // given up above
		case invalid(err) && b.live() > 1 && !b.unsure:
			// Refused before the append: split, so that only the records
			// at fault fail (with AcksNone too: the halves are not a
			// retry of what the broker took).
			pp.split(b, err)
			return
		case errors.Is(err, api.ErrUnknownTopicOrPartition) && pp.gone(dl, deadline, &rest):
			// With AcksNone too: a look-up, not a retry.
			pp.abandon(b, rest, err)
			return
		case p.cfg.acks == AcksNone:
			// Handed to the broker: not retried, whatever came back. An
			// attempt the broker may have appended (a timeout, a lost
			// answer) says so, as it would with a retry after it: its
			// error alone (api.ErrRequestTimedOut, say) does not.
			if b.unsure {
				err = appended(notCtx(err))
			}
			pp.giveUp(b, err)
			return
		case errors.Is(err, api.ErrUnknownProducerID) && b.sealed && p.cfg.idempotent && !b.unsure:
			// The broker lost the producer's state (retention, say) and
			// refused the batch: it goes again under a new producer id,
			// as Kafka's idempotent producer bumps its epoch (KIP-360),
			// once the batches before it, under the old id, are done.
			// Under the old id every later batch would be refused too.
			pp.settle()
			p.resetProducerID(b.pidGen, err)
			pp.unseal(b)
			continue
		case errors.Is(err, ErrOutOfOrderSequence) && b.sealed && p.cfg.idempotent:
			// A gap before the batch: the broker lost records it had
			// acknowledged (a crash under a lax fsync policy, say), or
			// never had some. As franz-go resets its producer id and
			// retries, and Kafka's idempotent producer bumps its epoch and
			// retries (KIP-360), the batch goes again under a new producer
			// id, with the batches after it, once the batches before it
			// are done; nothing else fails. Unless an earlier attempt of
			// it may have been appended: then it fails (and only it), so
			// that it is never there twice.
			if b.unsure {
				pp.giveUp(b, err) // which logs it
				return
			}
			pp.settle()
			p.cfg.logger.Warn("sequence numbers refused: the broker lost records or never had them; retrying under a new producer id",
				"topic", pp.t.name, "partition", pp.id, "producer_id", b.pid, "base_sequence", b.baseSeq, "err", err)
			p.resetProducerID(b.pidGen, err)
			pp.unseal(b)
			continue
		case errors.Is(err, ErrOutOfOrderSequence), errors.Is(err, ErrProducerFenced):
			pp.fatal(b, err)
			return
		case api.IsRetriable(err):
			p.cfg.logger.Debug("retrying batch", "topic", pp.t.name, "partition", pp.id, "attempt", b.attempts, "err", err)
			continue
		default:
			pp.giveUp(b, err)
			return
		}
	}
}

// seal gives the batch its producer id and sequence numbers (when
// idempotent) and encodes it. Taking a producer id waits until the
// batch's deadline at most (through dl).
//
// Without a codec the batch is its records encoded, in the partition's
// builder, which the partition keeps until the batch is done. With a
// codec it is their compressed copy, in the partition's own buffer
// (comp), and the builder goes back to the pool once the batch is
// compressed: the records encoded are not needed again (a retry sends the
// compressed bytes, sequence numbers included, and a batch sealed again
// is encoded again from its records), so that a batch being sent holds
// its compressed size, not that and its records encoded, and the
// partitions share a builder for each batch being built at the moment.
func (pp *partition) seal(b *batch, dl *deadlines, deadline time.Time) error {
	p := pp.p
	if p.cfg.idempotent {
		id, epoch, gen, ok := p.knownPID()
		if !ok {
			var err error
			id, epoch, gen, err = p.producerID(dl.start(deadline))
			dl.stop()
			if err != nil {
				return err
			}
		}
		if gen != pp.pidGen {
			pp.pidGen, pp.seq = gen, 0
		}
		b.pid, b.epoch, b.pidGen, b.baseSeq = id, epoch, gen, pp.seq
	}
	var (
		data record.Batch
		err  error
	)
	if p.cfg.codec == compression.None {
		if pp.bld == nil {
			pp.bld = p.builders.Get().(*record.Builder)
		}
		pp.encode(b, pp.bld)
		data, err = pp.bld.Finish(compression.None)
	} else {
		bld := p.builders.Get().(*record.Builder)
		pp.encode(b, bld)
		if pp.comp == nil {
			pp.comp = p.comps.Get().(*[]byte)
		}
		// Into the partition's buffer, whose last batch is done (or,
		// with a pipeline, appended): on error AppendTo returns it
		// empty.
		*pp.comp, err = bld.AppendToLevel((*pp.comp)[:0], p.cfg.codec, p.cfg.level)
		p.builders.Put(bld)
		data = *pp.comp
	}
	if err != nil {
		return err
	}
	if p.cfg.idempotent {
		pp.seq = record.AddSequence(pp.seq, int64(b.live()))
	}
	b.data = data
	copy(b.hdr[:], data)
	b.sealed = true
	return nil
}

// encode encodes the batch's records into bld (emptied first: it holds
// the last batch's encoding, or a failed seal's), under the batch's
// producer id and sequence numbers when idempotent.
func (pp *partition) encode(b *batch, bld *record.Builder) {
	bld.Reset()
	if pp.p.cfg.idempotent {
		bld.SetProducer(b.pid, b.epoch, b.baseSeq)
	}
	b.encode(bld)
}

// unseal undoes the seal of a batch never sent, after records were
// dropped from it, so that it is sealed again without them (or of a
// batch refused for an unknown producer id, so that it is sealed again
// under a new one): its sequence numbers are taken back, since they are
// the partition's last (it seals one batch at a time, and sends them in
// order).
func (pp *partition) unseal(b *batch) {
	if pp.p.cfg.idempotent && pp.pidGen == b.pidGen {
		pp.seq = b.baseSeq
	}
	b.sealed = false
}

// dropAll completes a batch none of whose records is sent (every one was
// dropped, its ctx having ended), once the batches before it are done.
func (pp *partition) dropAll(b *batch) {
	pp.settle()
	pp.p.cfg.logger.Debug("records dropped before sending", "topic", pp.t.name, "partition", pp.id, "records", len(b.recs))
	pp.fail(b, nil)
}

// gone asks the broker for the partition's topic again, after the broker
// refused a batch for an unknown topic or partition, and reports whether
// the answer confirms it: the topic is unknown (then the topic is marked
// gone, so that later records fail at once: see Producer.topic), or has
// no such partition (it was deleted and created again with fewer). Any
// other answer (the topic has the partition: a broker that had not caught
// up; or an error) is transient, and the batch is retried. The look-up
// ends by the batch's delivery deadline (through dl).
//
// When it confirms it, gone also sets *rest to the batches buffered for
// the partition before the look-up was sent, taken from it, for abandon
// to fail with the refused one: the answer is about them. Those produced
// since stay, to be sent: the topic may have been created again between
// the broker's answer and the producer's reading of it, and a record
// produced after CreateTopic returned must reach the new topic (if the
// topic is still gone it is refused in turn, and fails the same way).
func (pp *partition) gone(dl *deadlines, deadline time.Time, rest *[]*batch) bool {
	asked := pp.closeOpen()
	n, err := pp.t.refresh(dl.start(deadline), deadline)
	dl.stop()
	switch {
	case errors.Is(err, api.ErrUnknownTopicOrPartition):
		// Taken before the topic is marked gone: a record that comes
		// after the mark waits for Producer.topic's look-up, and is
		// buffered only if the topic is back.
		*rest = pp.takeFirst(asked)
		pp.t.gone.Store(true)
		return true
	case err != nil || int(pp.id) < n:
		return false
	default:
		*rest = pp.takeFirst(asked)
		return true
	}
}

// closeOpen queues the open batch, so that the records produced from now
// on go into new batches, and returns the number of batches buffered.
// Only the partition's goroutine takes batches from the queue's front
// (and puts split halves there), so the first ones stay those until it
// takes them (takeFirst).
func (pp *partition) closeOpen() int {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	if pp.cur != nil {
		pp.queue = append(pp.queue, pp.cur)
		pp.cur = nil
	}
	return len(pp.queue)
}

// takeFirst takes the first n batches buffered for the partition.
func (pp *partition) takeFirst(n int) []*batch {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	bs := append([]*batch(nil), pp.queue[:n]...)
	k := copy(pp.queue, pp.queue[n:])
	clear(pp.queue[k:])
	pp.queue = pp.queue[:k]
	return bs
}

// abandon fails a batch for a partition that is gone, and rest, the
// records buffered for the partition when that was confirmed (see gone):
// none of them could be delivered.
func (pp *partition) abandon(b *batch, rest []*batch, err error) {
	pp.giveUp(b, err)
	for _, x := range rest {
		pp.fail(x, err)
	}
}

// invalid reports whether err is the broker's refusal of a batch as too
// large or invalid for some of its records: a batch split in halves then
// fails only those. INVALID_TIMESTAMP is one by its code too
// (api.ErrInvalidTimestamp, as api.ForCode gives it: a Client that reads
// Kafka's codes), not only as runnel's broker answers it
// (log.ErrInvalidTimestamp, which matches log.ErrInvalidRecord).
func invalid(err error) bool {
	return errors.Is(err, ErrRecordTooLarge) || errors.Is(err, log.ErrInvalidRecord) || errors.Is(err, api.ErrInvalidTimestamp)
}

// refused reports whether err says the broker did not append the batch.
// An error matching log.ErrLogFenced never does, whatever it wraps
// beside: a log fenced while the batch waited for its fsync fails it
// after the append, with the fencing's cause (record.ErrCorrupt, say,
// for a compaction that met a corrupt batch).
func refused(err error) bool {
	if errors.Is(err, log.ErrLogFenced) {
		return false
	}
	for _, e := range refusals {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refusals are the broker's errors that come before an append.
// api.ErrBrokerClosed is not one: *runnel.Broker's Produce returns it
// after the append too, when the broker closed while the request waited
// for its fsync and the closing fsync failed (see its ProduceAsync), and
// a batch taken for refused gives its sequence numbers to the next batch,
// which a broker that kept it would then drop as its duplicate.
//
// api.ErrNotLeader is not one either: Kafka's broker answers
// NOT_LEADER_OR_FOLLOWER before an append when it does not lead the
// partition, but also after one, to an acks=all request waiting for its
// followers when the partition's leadership moves away
// (Partition.checkEnoughReplicasReachOffset), so a batch refused with it
// may be in the log.
//
// api.ErrInvalidTimestamp is the producer's own ErrInvalidTimestamp, a
// record it refuses before buffering it, and also what api.ForCode gives
// for Kafka's INVALID_TIMESTAMP, which Kafka's broker answers before an
// append (a timestamp outside message.timestamp.before.max.ms or
// .after.max.ms): from a Client, a refusal.
var refusals = []error{
	ErrRecordTooLarge, log.ErrInvalidRecord, record.ErrCorrupt, api.ErrInvalidTimestamp,
	api.ErrUnknownTopicOrPartition, api.ErrInvalidTopic, api.ErrInvalidRequiredAcks,
	api.ErrInvalidRequest, api.ErrNotEnoughReplicas,
	ErrOutOfOrderSequence, ErrProducerFenced, api.ErrUnknownProducerID, api.ErrPolicyViolation,
}

// succeed completes a delivered batch: its records, and the promises of
// those dropped from it, in order. It ends the partition's run of
// failures (see logFailure).
func (pp *partition) succeed(b *batch, resp api.ProduceResponse) {
	pp.acknowledged(b)
	pp.failures.end()
	idem := b.sealed && pp.p.cfg.idempotent
	i := int64(0) // of the record among those sent
	for k := range b.recs {
		pr := &b.recs[k]
		r := pr.r
		if pr.dropped() {
			pr.promise(r, b.ctxOf(k).Err())
			continue
		}
		r.Partition = pp.id
		r.Offset = -1
		if resp.BaseOffset >= 0 {
			r.Offset = resp.BaseOffset + i
		}
		if resp.LogAppendTime != record.NoTimestamp {
			// Any time but -1, as Kafka's producer takes it: a broker
			// whose clock is before 1970 stamps negative ones.
			r.Timestamp, r.TimestampType = time.UnixMilli(resp.LogAppendTime), record.LogAppendTime
		} else {
			// Its own time, whatever TimestampType the caller left (a
			// record forwarded from a LogAppendTime topic, say).
			r.TimestampType = record.CreateTime
		}
		if idem {
			r.ProducerID, r.ProducerEpoch, r.Sequence = b.pid, b.epoch, record.AddSequence(b.baseSeq, i)
		} else {
			r.ProducerID, r.ProducerEpoch, r.Sequence = record.NoProducerID, record.NoProducerEpoch, record.NoSequence
		}
		pr.promise(r, nil)
		i++
	}
	pp.p.release(int64(len(b.recs)), b.bytes)
	pp.reuse(b)
}

// failureLog is a partition's run of failed batches (see logFailure).
// The partition's goroutine and its acker (see pipeline) both fail and
// complete batches.
type failureLog struct {
	mu  sync.Mutex
	on  atomic.Bool // a run goes on: end has something to end
	run logrun.Run  // guarded by mu
}

// failureKind is what makes two failures of a partition's records the
// same kind, as logged (see logFailure): the line, and the error's
// Kafka code, or for a local error (code -1) whether it is a delivery
// timeout or the producer's Close. Its text is no kind: it names
// attempts, offsets and times that differ from batch to batch.
type failureKind struct {
	msg             string
	code            int16
	timeout, closed bool
}

// logFailure logs a failure of the partition's records, msg with args
// and err: at Warn for the first of a run of failures of the same kind
// (see failureKind), then at Warn once every 30 s while the run goes on,
// saying for how long and how many ("failing", "failures"), and at Debug
// between (see logrun). A batch delivered ends the run. Each record's
// promise gets its error all the same; the log is for an operator, whom a
// refusal that does not go away (a policy, a full disk) gave a Warn for
// every batch. It holds no lock while it logs (see Logger).
func (pp *partition) logFailure(msg string, err error, args ...any) {
	kind := failureKind{msg: msg, code: api.Code(err),
		timeout: errors.Is(err, ErrDeliveryTimeout), closed: errors.Is(err, ErrClosed)}
	f := &pp.failures
	f.mu.Lock()
	level, extra := f.run.Next(time.Now(), kind, slog.LevelWarn)
	f.on.Store(true)
	f.mu.Unlock()
	args = append([]any{"topic", pp.t.name, "partition", pp.id}, args...)
	pp.p.cfg.logger.Log(context.Background(), level, msg, append(append(args, "err", err), extra...)...)
}

// end ends the run of failures, if one goes on.
func (f *failureLog) end() {
	if f.on.Load() {
		f.mu.Lock()
		f.run.End()
		f.on.Store(false)
		f.mu.Unlock()
	}
}

// fail completes a batch's records with err, those dropped from it with
// their ctx's error.
func (pp *partition) fail(b *batch, err error) {
	for i := range b.recs {
		pr := &b.recs[i]
		pr.promise(pr.r, b.outcome(i, err))
	}
	pp.p.release(int64(len(b.recs)), b.bytes)
	pp.reuse(b)
}

// failTaken fails bs as fail does, on the goroutine of the Produce whose
// record would have started the partition's goroutine, had Close not
// come first (see addRecord): that record opened bs[0], and own is its
// buffer space. The other records are those of Produce calls that joined
// its batches meanwhile, and returned: nobody else would run their
// promises or free their space. A promise is the application's code, and
// may panic on this goroutine: the panic then goes on to that Produce's
// caller, as placeRecord's do (see produce), but only once the promises
// after it have run (a ProduceSync waiting for one of them would wait for
// ever) and the space of every record but its own is free. Its own, which
// placeRecord's deferred undo frees should a panic come, is freed last,
// here once every promise has run.
func (pp *partition) failTaken(bs []*batch, err error, own int64) {
	f := failing{pp: pp, bs: bs, err: err, own: own}
	f.run()
	pp.p.release(1, own)
}

// failing is failTaken's work: the records whose promises have run are
// those before record i of batch b.
type failing struct {
	pp   *partition
	bs   []*batch
	err  error
	own  int64
	b, i int
}

// run runs the promises from record i of batch b on, and frees each
// batch's space (but own) once its promises have run. Should a promise
// panic, the deferred resume runs the rest, and the panic goes on.
func (f *failing) run() {
	defer f.resume()
	for ; f.b < len(f.bs); f.b, f.i = f.b+1, 0 {
		b := f.bs[f.b]
		for f.i < len(b.recs) {
			i := f.i
			f.i++ // past it before its promise runs, for resume
			b.recs[i].promise(b.recs[i].r, b.outcome(i, f.err))
		}
		n, size := int64(len(b.recs)), b.bytes
		if f.b == 0 {
			n, size = n-1, size-f.own
		}
		f.pp.p.release(n, size)
		f.pp.reuse(b)
	}
}

// resume goes on with run after a promise panicked.
func (f *failing) resume() {
	if f.b < len(f.bs) {
		f.run()
	}
}

// settle waits, before the partition's goroutine completes a batch
// itself, for the batches in flight before it (see pipeline).
func (pp *partition) settle() { pp.pipe.idle() }

// giveUp fails a batch for good. Its sequence numbers are reused by the
// next batch when the broker surely did not append it; otherwise the
// producer takes a new id, so that they never name other records, and
// the error says that the records may have been written if an earlier
// attempt may have been appended (see maybeWritten). The error never matches a ctx's (see notCtx); the
// records dropped from the batch get their own ctx's.
func (pp *partition) giveUp(b *batch, err error) {
	err = maybeWritten(b, notCtx(err))
	pp.settle()
	if b.sealed && pp.p.cfg.idempotent {
		if b.unsure {
			pp.p.resetProducerID(b.pidGen, err)
		} else if pp.pidGen == b.pidGen {
			pp.seq = b.baseSeq
		}
	}
	pp.logFailure("batch failed", err, "records", len(b.recs), "attempts", b.attempts)
	pp.fail(b, err)
}

// fatal fails the batch and every record buffered for the partition, after
// the broker refused the producer's sequence numbers or epoch. A batch
// refused for its epoch (the producer keeps its id) gives its sequence
// numbers back to the next batch, as giveUp's does, unless an earlier
// attempt of it may have been appended: kept, they would leave a gap
// that the broker refuses in the next batch, if it takes that one.
func (pp *partition) fatal(b *batch, err error) {
	pp.settle()
	switch {
	case errors.Is(err, ErrOutOfOrderSequence):
		pp.p.resetProducerID(b.pidGen, err)
	case b.sealed && pp.p.cfg.idempotent && !b.unsure && pp.pidGen == b.pidGen:
		pp.seq = b.baseSeq
	}
	pp.mu.Lock()
	rest := pp.takeAllLocked()
	pp.mu.Unlock()
	pp.logFailure("partition's records failed", err, "records", len(b.recs), "buffered_batches", len(rest))
	pp.fail(b, maybeWritten(b, err))
	for _, x := range rest {
		pp.fail(x, err) // never sent
	}
}

// maybeWritten is the error of a batch that fails for good with err, the
// error of its latest attempt (or one that wraps it): err, with
// ErrMaybeWritten beside it when an earlier attempt of the batch may have
// been appended. Then err, even a refusal of the broker's (which says
// only that the latest attempt was refused), must not read as "not
// written": the broker may have appended an earlier attempt, whose
// answer was lost. What err itself says of the latest attempt is
// ProduceSync's to read.
func maybeWritten(b *batch, err error) error {
	if !b.earlier {
		return err
	}
	return appended(err)
}

// appended is err, the error of a batch that the broker may have
// appended, with ErrMaybeWritten beside it (unless it matches it
// already, or is nil).
func appended(err error) error {
	if err == nil || errors.Is(err, ErrMaybeWritten) {
		return err
	}
	return fmt.Errorf("%w (%w)", err, ErrMaybeWritten)
}

// split sends a refused batch again as two, so that only the records at
// fault fail: the halves go first in the queue, with the batch's sequence
// numbers free again.
func (pp *partition) split(b *batch, err error) {
	p := pp.p
	if b.sealed && p.cfg.idempotent && pp.pidGen == b.pidGen {
		pp.seq = b.baseSeq
	}
	p.cfg.logger.Debug("splitting refused batch", "topic", pp.t.name, "partition", pp.id, "records", len(b.recs), "err", err)
	half := len(b.recs) / 2
	first, second := p.newBatch(b.created), p.newBatch(b.created)
	// Their records were sent: they are fixed, whatever their ctx.
	first.sent, second.sent = true, true
	// The halves are smaller: everything fits. A record keeps its ctx
	// (the error of one that was dropped).
	j := 0 // in b.ctxs
	for i := range b.recs {
		var ctx context.Context
		if j < len(b.ctxs) && b.ctxs[j].i == i {
			ctx = b.ctxs[j].ctx
			j++
		}
		if i < half {
			first.add(&b.recs[i], ctx, math.MaxInt)
		} else {
			second.add(&b.recs[i], ctx, math.MaxInt)
		}
	}
	pp.mu.Lock()
	pp.queue = append(pp.queue, nil, nil)
	copy(pp.queue[2:], pp.queue)
	pp.queue[0], pp.queue[1] = first, second
	pp.mu.Unlock()
	pp.reuse(b) // empties b: its records are the halves' now
}

// backoff is the wait before retry number try (1, 2, ...): RetryBackoff
// doubled each time up to the maximum, jittered by ±20%. A wait of more
// than maxBackoff is maxBackoff: the caller cuts it at the delivery
// deadline anyway, and the jitter of a larger one would overflow.
func (p *Producer) backoff(try int) time.Duration {
	d := min(p.cfg.maxRetryBackoff, maxBackoff)
	if s := uint(try - 1); s < 63 && p.cfg.retryBackoff <= d>>s {
		d = p.cfg.retryBackoff << s // at most d: no overflow
	}
	return d - d/5 + rand.N(d/5*2+1)
}

// maxBackoff bounds a backoff (146 years), so that d + d/5 stays within a
// time.Duration.
const maxBackoff = time.Duration(math.MaxInt64 / 2)

// sleep waits d, or until Close.
func (p *Producer) sleep(d time.Duration, timer **time.Timer) {
	if d <= 0 {
		return
	}
	if *timer == nil {
		*timer = time.NewTimer(d)
	} else {
		(*timer).Reset(d)
	}
	select {
	case <-(*timer).C:
	case <-p.done:
	}
}

func closedError(last error) error {
	if last == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w (the last attempt failed: %w)", ErrClosed, notCtx(last))
}

// withBefore is err, the last attempt's, cut short at the delivery
// deadline, matching also before, the error of the attempt before it, if
// there was one: ErrDeliveryTimeout matches the broker's last answer
// (see its doc), whether or not a retry was in flight at the deadline.
func withBefore(err, before error) error {
	if before == nil {
		return err
	}
	return fmt.Errorf("%w; the attempt before: %w", err, notCtx(before))
}

// cutShort is the error a producer id's look-up that failed with err
// leaves for the batch's ErrDeliveryTimeout, last being the one before:
// err, or, when err is the delivery deadline's cutting the look-up
// short, last with it (withBefore).
func cutShort(err, last error, deadline time.Time) error {
	if time.Now().Before(deadline) || !(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	return withBefore(fmt.Errorf("the producer id's look-up was cut short at the deadline (%v)", err), last)
}

func timeoutError(b *batch, d time.Duration, last error) error {
	if last == nil {
		return fmt.Errorf("%w: %d records not sent within %v", ErrDeliveryTimeout, b.live(), d)
	}
	return fmt.Errorf("%w: %d records not delivered within %v, after %d attempts: %w",
		ErrDeliveryTimeout, b.live(), d, b.attempts, notCtx(last))
}

// notCtx returns err, or, if it matches context.Canceled or
// context.DeadlineExceeded, an error with its message that matches
// neither. A record's promise gets an error matching a ctx's only from
// the record's own ctx, and then the record was not written; errors
// that come of the producer's own contexts (the delivery deadline of a
// request, Close cancelling it), after the record may have been
// appended, must not pass for that.
func notCtx(err error) error {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return errors.New(err.Error())
	}
	return err
}
