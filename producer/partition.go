package producer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/isnil"
	"github.com/runnel/runnel/internal/logrun"
	"github.com/runnel/runnel/record"
)

// topicState is what the producer knows of one topic: its partitions and
// its partitioner.
type topicState struct {
	p    *Producer
	name string

	mu          sync.Mutex // guards part, onNew and changes of parts and all
	part        TopicPartitioner
	onNew       NewBatchPartitioner          // part, if it wants OnNewBatch
	cons        ConsistentPartitioner        // part, if it says which records may go to any partition
	sticky      *stickyKeyTopic              // part, if StickyKeyPartitioner's (the default): choose calls it directly for a record without a key
	hot         atomic.Pointer[partition]    // the sticky partition, while its open batch may take records without mu (see place); stored under mu
	parts       atomic.Pointer[[]*partition] // the topic's partitions now: a prefix of all
	all         atomic.Pointer[[]*partition] // every partition the topic has had, by id
	refreshAt   atomic.Int64                 // when the next partition count check is due, in Producer.monoNow's ns
	refreshOnce atomic.Bool                  // a check is running
	sending     atomic.Int32                 // partitions whose goroutine runs (changed under its mu with draining): while none does, Produce checks the count's age (see freshen)
	gone        atomic.Bool                  // the broker confirmed the topic unknown: look again before taking a record
	looks       atomic.Uint64                // look-ups of the partition count begun (see follow)
	settled     uint64                       // guarded by mu: looks when a look-up last set parts or found them unchanged; one begun by then was under way with it (see follow)

	// What a HealthClient said of the partitions (see health.go).
	down        atomic.Pointer[[]int32] // the partitions of parts that refuse appends, ascending; nil if none (stored under mu)
	writable    []*partition            // guarded by mu: the partitions of parts not in down; nil if all or none are
	healthLooks atomic.Uint64           // look-ups of down begun
	looking     atomic.Int32            // look-ups of down under way
	healthSet   uint64                  // guarded by mu: the look-up whose answer down is
	healthOnce  atomic.Bool             // a goroutine of lookSoon's is running
	healthAgain atomic.Bool             // lookSoon was called since that goroutine's last look began
	nextLook    atomic.Int64            // when the next of lookSoon's look-ups may begin, in Producer.monoNow's ns
}

// topic returns the state of a topic, asking the broker for its
// partition count the first time, and again while the topic is known to
// be gone (see partition.gone): a record for a deleted topic fails at
// once with the broker's error, as one for a topic never created does,
// until the topic is created again. With block (Produce, not TryProduce)
// a retriable error of the look-up is retried (see lookUpBy).
func (p *Producer) topic(ctx context.Context, name string, block bool) (*topicState, error) {
	t := p.lastTop.Load()
	if t == nil || t.name != name {
		t = p.knownTopic(name)
	}
	if t != nil {
		if t.gone.Load() {
			// A topic deleted: its look-ups fail as a new topic's do (a
			// broker that cannot create it again), and are logged alike.
			err := t.lookAgain(ctx, block)
			if errors.Is(err, ErrDeliveryTimeout) {
				p.logLookUpFailure(name, err)
			} else if err == nil {
				p.endLookUpFailures(name)
			}
			return t, err
		}
		if t.sending.Load() == 0 {
			// No goroutine of the topic's runs, to look its count up
			// between batches: the record does, if the count is due.
			looked, err := t.freshen(ctx, block)
			if errors.Is(err, ErrDeliveryTimeout) {
				p.logLookUpFailure(name, err)
			} else if looked && err == nil {
				p.endLookUpFailures(name)
			}
			return t, err
		}
		return t, nil
	}
	if p.closed.Load() {
		// Once Close has let go of the topics' state (dropTopics), a topic
		// the producer knew is as one it never wrote to: no look-up.
		return nil, ErrClosed
	}
	deadline := time.Now().Add(p.cfg.deliveryTimeout)
	n, err := p.lookUpBy(ctx, name, block, deadline)
	if err != nil {
		if errors.Is(err, ErrDeliveryTimeout) {
			p.logLookUpFailure(name, err)
		}
		return nil, err
	}
	p.endLookUpFailures(name)
	t, made, err := p.newTopic(name, n)
	if made {
		// Which partitions take appends, before the first record is
		// partitioned, by the same deadline as the count (the records of
		// other goroutines meanwhile may go to any).
		t.lookHealthBy(ctx, deadline)
	}
	return t, err
}

// hotTopic is topic's answer without a look-up where it is plain, or nil:
// the producer's first topic, known there, whose goroutines run (so its
// count needs no look here). Inlined in produce, for every record.
func (p *Producer) hotTopic(name string) *topicState {
	if t := p.lastTop.Load(); t != nil && sameString(t.name, name) && !t.gone.Load() && t.sending.Load() != 0 {
		return t
	}
	return nil
}

// sameString is a == b, without a call when a and b are the same bytes:
// a topic's name as the producer keeps it and a record's Topic are most
// often one string, the caller's constant, which the name was taken from.
// == calls runtime.memequal for strings of the same length, and produce
// then loads again what it holds: some 15 instructions a record
// (callgrind).
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

// logLookUpFailure logs a record failed because its topic's partition
// count was not learnt by DeliveryTimeout (err): the records are lost as
// a failed batch's are, for a cause the operator must see to (a broker
// that cannot create the topic, its disk full; one that does not answer),
// which the look-up's retries logged at Debug only. As a partition's
// failed batches are (see partition.logFailure): at Warn for the first of
// a run, then at Warn once every 30 s while it goes on, at Debug between;
// a look-up of the topic that answers ends the run. It holds no lock
// while it logs (see Logger).
func (p *Producer) logLookUpFailure(name string, err error) {
	p.logLookUpFailureAt(name, err, time.Now())
}

// lookUpRun is a topic's run of failed look-ups: its logrun.Run, and when
// its latest failure was.
type lookUpRun struct {
	run  logrun.Run
	last time.Time
}

// minLookUpSweep is the fewest runs of failed look-ups kept before the
// stale ones are dropped (see logLookUpFailureAt).
const minLookUpSweep = 64

// logLookUpFailureAt is logLookUpFailure at now. The runs are kept by
// topic name, and a name no look-up answers again (a topic never created,
// a name made up per record) would keep its run for the producer's life:
// once they number lookUpSweep (minLookUpSweep at least), those whose
// latest failure is logrun.Every old or more are dropped, which changes
// no line's level (the next failure of such a topic is at Warn either
// way, only without "failing" and "failures"), and the next sweep waits
// for twice as many as are left, so that sweeping costs O(1) a failure.
func (p *Producer) logLookUpFailureAt(name string, err error, now time.Time) {
	p.lookUpMu.Lock()
	if p.lookUpFailures == nil {
		p.lookUpFailures = map[string]*lookUpRun{}
	}
	r := p.lookUpFailures[name]
	if r == nil {
		if len(p.lookUpFailures) >= max(p.lookUpSweep, minLookUpSweep) {
			for n, o := range p.lookUpFailures {
				if now.Sub(o.last) >= logrun.Every {
					delete(p.lookUpFailures, n)
				}
			}
			p.lookUpSweep = 2 * len(p.lookUpFailures)
		}
		r = &lookUpRun{}
		p.lookUpFailures[name] = r
	}
	r.last = now
	level, extra := r.run.Next(now, nil, slog.LevelWarn)
	p.lookUpMu.Unlock()
	p.cfg.logger.Log(context.Background(), level, "records failed: the topic's partition count not known",
		append([]any{"topic", name, "err", err}, extra...)...)
}

// endLookUpFailures ends the run of failed look-ups of topic name, if one
// goes on (see logLookUpFailure). It runs once a look-up of a topic's
// count answers, not per record.
func (p *Producer) endLookUpFailures(name string) {
	p.lookUpMu.Lock()
	delete(p.lookUpFailures, name)
	p.lookUpMu.Unlock()
}

// newTopic makes the state of a topic of n partitions, unless another
// Produce made it first: made says whether this call did.
func (p *Producer) newTopic(name string, n int) (t *topicState, made bool, err error) {
	p.topicsMu.Lock()
	defer p.topicsMu.Unlock()
	if t := p.knownTopic(name); t != nil {
		return t, false, nil
	}
	if p.closed.Load() {
		// Closed since the look-up: a state stored now would outlive
		// Close's dropTopics, held by the closed producer.
		return nil, false, ErrClosed
	}
	t = &topicState{p: p, name: name, part: p.cfg.partitioner.ForTopic(name)}
	if isnil.Value(t.part) {
		return nil, false, fmt.Errorf("%w: the partitioner's ForTopic(%q) returned nil", ErrInvalidOption, name)
	}
	t.onNew, _ = t.part.(NewBatchPartitioner)
	t.cons, _ = t.part.(ConsistentPartitioner)
	t.sticky, _ = t.part.(*stickyKeyTopic)
	parts := make([]*partition, n)
	for i := range parts {
		parts[i] = newPartition(t, int32(i))
	}
	t.parts.Store(&parts)
	t.all.Store(&parts)
	t.refreshAt.Store(p.nextRefresh(p.monoNow()))
	p.topics.Store(name, t)
	p.lastTop.CompareAndSwap(nil, t)
	if p.testTopicMade != nil {
		p.testTopicMade(t)
	}
	return t, true, nil
}

// knownTopic returns the state of a topic the producer knows, or nil. It
// takes no lock: a sync.Map's Load, which a topic added does not slow
// down. The map was copied on write, each new topic copying every
// topic's entry: a producer's first record to each of 10,000 topics took
// 7.3 s and allocated 2.3 GB (BenchmarkProduceTopics/new=10000).
func (p *Producer) knownTopic(name string) *topicState {
	if v, ok := p.topics.Load(name); ok {
		return v.(*topicState)
	}
	return nil
}

// partitions asks the broker for the partition count of a topic, until
// ctx ends or Close (ErrClosed: not ctx's error, which a record's promise
// gets only from the record's ctx); a count below 1 is
// ErrUnknownTopicOrPartition, and one above math.MaxInt32, which no Kafka
// topic has, api.ErrInvalidRequest.
func (p *Producer) partitions(ctx context.Context, name string) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()
	n, err := p.client.Partitions(ctx, name)
	if err != nil && p.closed.Load() {
		return 0, closedError(err)
	}
	if err == nil && n < 1 {
		err = fmt.Errorf("%w: %s has %d partitions", api.ErrUnknownTopicOrPartition, name, n)
	}
	if err == nil && n > math.MaxInt32 {
		// Kafka's partition ids are int32s: no topic has more. The
		// producer would make a partition of each (make panicked for a
		// count past memory, or took it all).
		return 0, fmt.Errorf("%w: the Client says %s has %d partitions, more than an int32 numbers", api.ErrInvalidRequest, name, n)
	}
	return n, err
}

// partitionsBy is partitions, with the call cut short at deadline (a
// record's DeliveryTimeout) should the Client not answer by then: as
// Kafka's send waits for its metadata no longer than max.block.ms, a
// record with a ctx that never ends is not held for ever by a broker
// that does not answer. That ends with ErrDeliveryTimeout (matching the
// call's error, but not ctx's: the record's own ctx did not end); Close
// and the end of ctx end it as partitions does.
func (p *Producer) partitionsBy(ctx context.Context, name string, deadline time.Time) (int, error) {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	n, err := p.partitions(dctx, name)
	if err != nil && dctx.Err() != nil && ctx.Err() == nil && !p.closed.Load() {
		return 0, fmt.Errorf("%w: the partition count of %s not known within %v: %w",
			ErrDeliveryTimeout, name, p.cfg.deliveryTimeout, notCtx(err))
	}
	return n, err
}

// lookUpBy is partitions for a record that Produce is to buffer: with
// block, an error Kafka's table calls retriable (but an unknown topic or
// partition, which the broker answers with authority: see Producer, and
// one that matches api.ErrBrokerClosed: the Client is closed) is
// retried after a backoff, as Kafka's producer waits for its metadata
// (max.block.ms) and franz-go retries its metadata loads, until ctx ends
// (ctx's error), Close (ErrClosed) or deadline, DeliveryTimeout after the
// first try (ErrDeliveryTimeout, matching the last error too); the
// look-ups for one record (see lookAndFollow), and the look at which of
// a new topic's partitions take appends, share it. Without block
// (TryProduce, which must not wait) the first answer is the answer.
func (p *Producer) lookUpBy(ctx context.Context, name string, block bool, deadline time.Time) (int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var last error // the look-up before's
	for try := 1; ; try++ {
		n, err := p.partitionsBy(ctx, name, deadline)
		if errors.Is(err, ErrDeliveryTimeout) {
			// Cut short at the deadline: the error matches the broker's
			// answer to the look-up before too, if there was one.
			return 0, withBefore(err, last)
		}
		if err == nil || !block || !api.IsRetriable(err) || errors.Is(err, api.ErrUnknownTopicOrPartition) {
			return n, err
		}
		last = err
		// A retry ends with Close or ctx, with their errors rather than
		// the look-up's (which the ctx ending under it may have caused):
		// a record failed with its ctx's error was not written.
		switch {
		case errors.Is(err, ErrClosed):
			return 0, err // partitions saw Close
		case p.closed.Load():
			return 0, closedError(err)
		case ctx.Err() != nil:
			return 0, ctx.Err()
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, fmt.Errorf("%w: the partition count of %s not known within %v, after %d attempts: %w",
				ErrDeliveryTimeout, name, p.cfg.deliveryTimeout, try, notCtx(err))
		}
		d := min(p.backoff(try), left)
		p.cfg.logger.Debug("retrying the partition count", "topic", name, "attempt", try, "err", err)
		if timer == nil {
			timer = time.NewTimer(d)
		} else {
			timer.Reset(d)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-p.done:
			return 0, closedError(err)
		}
	}
}

// monoNow returns the time since New on Go's monotonic clock, in ns:
// what MetadataMaxAge is counted on. The times of the periodic look-ups
// were kept in Unix ns, on the wall clock, which an NTP step or a VM
// restored moves: stepped back, the next look-up came that much later
// (never, for a year's step); stepped forward, at once. time.Since of a
// reading with a monotonic part reads only the monotonic clock, cheaper
// than time.Now, which reads both.
func (p *Producer) monoNow() int64 {
	if p.testMono != nil {
		return p.testMono()
	}
	return int64(time.Since(p.start))
}

// nextRefresh is when a partition count looked up at now (monoNow) is
// looked up again: MetadataMaxAge later, or never if that is past what
// an int64 of ns holds (292 years).
func (p *Producer) nextRefresh(now int64) int64 {
	if d := int64(p.cfg.metadataMaxAge); now > 0 && d > math.MaxInt64-now {
		return math.MaxInt64
	}
	return now + int64(p.cfg.metadataMaxAge)
}

// maybeRefresh refreshes the topic's partition count when MetadataMaxAge
// has passed, for pp's goroutine between two batches: the look-up ends
// by the delivery deadline of pp's next batch (through dl), so that a
// broker that does not answer cannot hold the batch past it.
func (t *topicState) maybeRefresh(pp *partition, dl *deadlines) {
	if t.p.monoNow() < t.refreshAt.Load() || !t.refreshOnce.CompareAndSwap(false, true) {
		return
	}
	defer t.refreshOnce.Store(false)
	deadline := pp.nextDeadline()
	ctx := dl.start(deadline)
	t.refresh(ctx, deadline)
	t.lookHealth(ctx)
	dl.stop()
}

// freshen looks the topic's partition count up for a record, when the
// count is due (MetadataMaxAge old) and no partition's goroutine runs to
// look it up after its batch (maybeRefresh): the topic has been idle,
// for hours maybe, and its count may be as old, partitions added or the
// topic created again since. As Kafka's producer forgets the metadata
// of a topic idle for metadata.max.idle.ms, so that its next send waits
// for it, the record waits as for a topic's first count (see lookUpBy:
// ctx, Close, DeliveryTimeout, retries with block), and fails with the
// look-up's error; the count stays due then, and the next record asks
// again. A record whose look-up answers follows the count (see
// lookAndFollow), and the count is due again MetadataMaxAge after the
// look-up began. Produce calls that find it due at the same moment each
// ask, as for a topic's first count. looked reports whether it asked.
func (t *topicState) freshen(ctx context.Context, block bool) (looked bool, err error) {
	now := t.p.monoNow()
	if now < t.refreshAt.Load() {
		return false, nil
	}
	deadline := time.Now().Add(t.p.cfg.deliveryTimeout)
	if _, err := t.lookAndFollow(func() (int, error) { return t.p.lookUpBy(ctx, t.name, block, deadline) }); err != nil {
		return true, err
	}
	t.refreshAt.Store(t.p.nextRefresh(now))
	t.lookHealthBy(ctx, deadline) // at each refresh of the count (see HealthClient)
	return true, nil
}

// refresh asks the broker for the topic's partition count, until ctx
// ends or deadline (see partitionsBy), and follows it (see follow); it
// returns the count, or the broker's error, which changes nothing.
func (t *topicState) refresh(ctx context.Context, deadline time.Time) (int, error) {
	return t.refreshBy(context.Background(), func() (int, error) { return t.p.partitionsBy(ctx, t.name, deadline) })
}

// lookUpNow is refresh for a record whose partitioner chose a partition
// past the count the producer knows, with lookUpBy's retries: with block,
// a retriable error is retried until ctx ends, Close or DeliveryTimeout,
// as the look-up of a topic's first count is (Kafka's producer waits for
// the metadata of such a record, too, up to max.block.ms).
func (t *topicState) lookUpNow(ctx context.Context, block bool) (int, error) {
	deadline := time.Now().Add(t.p.cfg.deliveryTimeout)
	return t.refreshBy(ctx, func() (int, error) { return t.p.lookUpBy(ctx, t.name, block, deadline) })
}

// refreshBy is refresh and lookUpNow, with look the look-up: the next
// refresh is due MetadataMaxAge after now, and the count found is
// followed (see lookAndFollow, whose count it returns); an error changes
// nothing. caller is the ctx of the Produce that looks (lookUpNow), or
// context.Background() for the producer's own look-ups, whose ctx ends
// at a deadline of the producer's (refresh): a look-up that the caller's
// ctx or Close ended is logged at Debug, the caller's doing, which its
// record's promise tells; any other failure at Warn.
func (t *topicState) refreshBy(caller context.Context, look func() (int, error)) (int, error) {
	t.refreshAt.Store(t.p.nextRefresh(t.p.monoNow()))
	n, err := t.lookAndFollow(look)
	if err != nil {
		level := slog.LevelWarn
		if t.p.closed.Load() || errors.Is(err, ErrClosed) || caller.Err() != nil {
			level = slog.LevelDebug
		}
		t.p.cfg.logger.Log(context.Background(), level, "cannot refresh the partition count", "topic", t.name, "err", err)
		return 0, err
	}
	return n, nil
}

// lookAgain asks the broker for a topic known to be gone: the broker's
// error if it still is, else nil, the producer following the topic's
// partition count again.
func (t *topicState) lookAgain(ctx context.Context, block bool) error {
	deadline := time.Now().Add(t.p.cfg.deliveryTimeout)
	n, err := t.lookAndFollow(func() (int, error) { return t.p.lookUpBy(ctx, t.name, block, deadline) })
	if err != nil {
		return err
	}
	back := t.gone.Swap(false)
	t.p.cfg.logger.Info("topic is back", "topic", t.name, "partitions", n)
	if !back {
		return nil // another Produce found it back first, and looks
	}
	// A topic created again: what the producer knew of the old one's
	// partitions is not of these.
	t.setDown(nil, t.healthLooks.Add(1))
	t.lookHealthBy(ctx, deadline)
	return nil
}

// maxLooks is the most look-ups lookAndFollow makes for one count: it
// looks again only while another look-up under way at once brought
// another count (see follow), which takes the topic's count to change
// between their reads.
const maxLooks = 3

// lookAndFollow asks the broker for the topic's partition count with
// look, and follows it (see follow): it returns the count the producer
// follows then, or look's error, which changes nothing. When the answer
// cannot be placed among those of the look-ups under way at once, it
// looks again, up to maxLooks look-ups in all; the last one's answer
// that still cannot be is ignored.
func (t *topicState) lookAndFollow(look func() (int, error)) (int, error) {
	for try := 1; ; try++ {
		ticket := t.looks.Add(1)
		n, err := look()
		if err != nil {
			return 0, err
		}
		if count, ok := t.follow(n, ticket); ok || try == maxLooks {
			return count, nil
		}
	}
}

// follow takes n as the topic's partition count: partitions gained are
// added; when the topic has fewer (it was deleted and created again),
// later records are spread over those it has, and the batches already
// made for the others fail once the broker refuses them (see
// partition.gone). A partition that comes back is the same one, with its
// sequence numbers. ticket is the look-up's number in looks, taken as it
// began. Look-ups under way at once (a Produce's, a partition's
// goroutine's) reach follow in any order, whatever order they read the
// count in, and neither the count's growth (CreatePartitions) nor its
// shrinking (the topic deleted and created again with fewer) says which
// answer is the newer: a look-up that reads a count before a change may
// answer after one that read it since, or begin after it and read after
// it. So n is followed only if its look-up began once the look-up that
// last set the count, or found it unchanged (settled), had answered: it
// read the count after that one did. A count another than the one the
// producer has, from a look-up under way with that one, is not followed
// (ok false): the caller looks again (see lookAndFollow), the answer of
// a look-up begun now being the newer. One that is the count the
// producer has is taken as it is (ok true). follow returns the count
// followed now.
//
// The line it logs goes to the Logger after t.mu is released: the
// handler may call TryProduce (see Logger), which takes it.
func (t *topicState) follow(n int, ticket uint64) (count int, ok bool) {
	from, changed, ok := t.followLocked(n, ticket)
	if changed {
		t.p.cfg.logger.Info("topic's partition count changed", "topic", t.name, "from", from, "to", n)
		return n, true
	}
	return from, ok
}

// followLocked is follow's work under t.mu: it returns the count the
// topic had, whether it changed to n, and whether n could be placed
// (see follow).
func (t *topicState) followLocked(n int, ticket uint64) (from int, changed, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, all := *t.parts.Load(), *t.all.Load()
	if ticket <= t.settled {
		return len(old), false, n == len(old) // under way with the look-up that settled the count
	}
	t.settled = t.looks.Load()
	if n == len(old) {
		return len(old), false, true
	}
	t.unhotLocked()
	if n > len(all) {
		grown := make([]*partition, n)
		copy(grown, all)
		for i := len(all); i < n; i++ {
			grown[i] = newPartition(t, int32(i))
		}
		all = grown
		t.all.Store(&all)
	}
	parts := all[:n:n]
	t.parts.Store(&parts)
	t.storeDownLocked(t.downList()) // those past n gone
	return len(old), true, true
}

// place partitions a record whose buffer space is reserved and appends
// it to its partition's open batch; ctx is the record's, or nil if it
// can never end. An error (ErrInvalidPartition, ErrClosed) means that the
// record was not buffered: the caller still owns it and its space. sp,
// a ProduceSync's (nil for Produce), collects the record's partition.
// yield reports that the record starts a trickle (see addRecord): the
// caller yields, so that the partition's goroutine runs on its thread at
// once (see produce). It works under t.mu, but, with tryHot, for a
// record without a key that joins the sticky partition's batch marked
// hot (see markHotLocked), which no partitioner's code sees: produce
// tries that itself for its topic's plain case (hotTopic), and passes
// tryHot false then, so that a record the hot batch declined does not
// take the partition's lock a second time for the same answer. The
// partitioner is the application's code, and may panic: t.mu must be
// released all the same, so that the topic's other records are not held
// up for ever. The caller's deferred func does it (placeRecord's, which
// runs in any case to give the record back): place sets *locked while it
// holds t.mu.
// A deferred unlock of place's own cost every record some 16
// instructions more (callgrind, 412fc9cb).
func (t *topicState) place(pr pending, ctx context.Context, sp *syncParts, tryHot bool, locked *bool) (yield bool, err error) {
	if pp := t.hot.Load(); tryHot && pp != nil && pr.r.Key == nil {
		// The hot path: the record joins the sticky partition's open
		// batch, if that batch is still the one marked hot, without mu.
		// With watch, addHot watches ctx as addRecord does, and needs no
		// done (produce's own try's, which declines a ctx to watch anew):
		// no call of ctx's Done here, the application's code.
		if pp.addHot(&pr, ctx, nil, true, sp) {
			return false, nil // no trickle starts there (see addHot)
		}
	}
	t.mu.Lock()
	*locked = true
	parts := *t.parts.Load()
	pp, chosen := t.stickyChoice(pr.r, parts)
	var mapped bool
	if pp == nil {
		pp, chosen, mapped, err = t.choose(pr.r, parts)
	}
	switch {
	case err != nil:
	case t.onNew == nil:
		*locked = false
		t.mu.Unlock()
		return pp.add(pr, ctx, sp)
	default:
		var ok bool
		ok, yield, err = pp.addOrAbort(pr, ctx, sp)
		if err == nil && !ok {
			yield, err = t.placeNew(pr, ctx, sp, parts, pp, chosen, mapped)
		}
		if err == nil && t.sticky != nil && pr.r.Key == nil {
			t.markHotLocked(parts)
		}
	}
	*locked = false
	t.mu.Unlock()
	return yield, err
}

// The sticky partition's hot path. A record without a key, for the
// default partitioner (StickyKeyPartitioner) while every partition takes
// appends, goes to the sticky partition's open batch if it has one that
// takes it, and the sticky partition moves (OnNewBatch) only when it has
// none: all of that under mu, the topic's lock, for every record until
// 2026-12-07. place now first tries that batch under the partition's
// lock alone (addHot), if it is marked hot: as mu would find it, so
// that the record goes where it would have gone under mu. Each of the
// topic's records costs a lock less (and some 50 instructions).
//
// A batch marked hot (batch.hot) is its partition's open batch (cur)
// while that partition is the sticky one among parts, writable is nil
// (every partition takes appends, or none does), and the topic's
// partitioner is the default. markHotLocked marks it under mu, once a
// record without a key was placed there. What would make that untrue
// unmarks it first, under mu and the partition's lock:
//
//   - the sticky partition moves (OnNewBatch) only once its open batch
//     took no more (addOrAbort found none, or queued it as full): a
//     batch opened there since is not marked, and only a record placed
//     under mu opens one;
//   - a change of the topic's partitions (followLocked), or of those
//     that take appends that leaves writable not nil (storeDownLocked),
//     unmarks it (unhotLocked).
//
// So a record that finds the batch marked under the partition's lock
// goes where place would have put it under mu at that moment; one that
// does not (no batch open, not marked, or the record does not fit) is
// placed under mu, as before. hot, read without a lock, only says
// which partition to look at.

// markHotLocked marks the sticky partition's open batch hot, and that
// partition as the topic's hot one, after a record without a key was
// placed there. The caller holds mu.
func (t *topicState) markHotLocked(parts []*partition) {
	i := t.sticky.on
	if t.writable != nil || i < 0 || int(i) >= len(parts) {
		return
	}
	pp := parts[i]
	pp.mu.Lock()
	if pp.cur != nil {
		pp.cur.hot = true
	}
	pp.mu.Unlock()
	if t.hot.Load() != pp {
		t.hot.Store(pp)
	}
}

// unhotLocked unmarks the hot partition's open batch (see markHotLocked),
// before the topic's partitions, or those that take appends, change. The
// caller holds mu.
func (t *topicState) unhotLocked() {
	pp := t.hot.Load()
	if pp == nil {
		return
	}
	t.hot.Store(nil)
	pp.mu.Lock()
	if pp.cur != nil {
		pp.cur.hot = false
	}
	pp.mu.Unlock()
}

// placeNew places a record that addOrAbort turned back from pp, where
// choose put it (chosen, mapped) among parts: it would start a new batch
// there. As KIP-480 says, the partitioner moves on first (OnNewBatch),
// then chooses again. The caller holds t.mu.
func (t *topicState) placeNew(pr pending, ctx context.Context, sp *syncParts, parts []*partition, pp *partition, chosen int32, mapped bool) (yield bool, err error) {
	// The record's wait on pp (see addOrAbort) ends as it is added, or
	// at the latest here, should the partitioner panic, choose another
	// partition or fail.
	back := false
	defer func() {
		if !back {
			pp.placed()
		}
	}()
	if i, ok := t.newBatchIndex(pp, chosen, mapped); ok {
		t.onNew.OnNewBatch(i)
	}
	to, _, _, err := t.choose(pr.r, parts)
	if err != nil {
		return false, err
	}
	back = true
	if to == pp {
		return pp.addPlaced(pr, ctx, sp)
	}
	pp.placed()
	return to.add(pr, ctx, sp)
}

// choose asks the partitioner where r goes among parts, the topic's
// partitions (or among those that take appends, for a record that may go
// to any: mapped; see ConsistentPartitioner): it returns the partition
// and the choice as the partitioner made it (its index among those it was
// given). The caller holds mu.
func (t *topicState) choose(r *record.Record, parts []*partition) (pp *partition, chosen int32, mapped bool, err error) {
	among := parts
	if t.writable != nil && t.cons != nil && !t.cons.RequiresConsistency(r) {
		among, mapped = t.writable, true
	}
	var i int32
	if s := t.sticky; s != nil && r.Key == nil {
		i = s.partition(len(among)) // its Partition, inlined
	} else {
		i = t.part.Partition(r, len(among))
	}
	if i < 0 || int(i) >= len(among) {
		return nil, i, mapped, &rangeError{topic: t.name, chosen: i, n: len(among), writable: mapped}
	}
	return among[i], i, mapped, nil
}

// stickyChoice is choose's answer where it is plain, or nil: the default
// partitioner's choice for a record without a key while every partition
// takes appends (among is parts, mapped false), its sticky partition
// when it has one in range (s.partition's own hot path). Inlined in
// place, for every record. The caller holds mu.
func (t *topicState) stickyChoice(r *record.Record, parts []*partition) (*partition, int32) {
	if s := t.sticky; s != nil && r.Key == nil && t.writable == nil {
		if i := s.on; i >= 0 && int(i) < len(parts) {
			return parts[i], i
		}
	}
	return nil, 0
}

// newBatchIndex is the partition OnNewBatch is told of, for a record that
// would start a new batch on pp, chosen as choose says: while some
// partitions refuse appends, a ConsistentPartitioner's partitions are
// numbered among those that take appends, whatever the record — a keyed
// record's partition too, which Partition chose among all — so that
// OnNewBatch compares it with a sticky partition chosen among them. A
// partition that refuses appends has no such number: ok is false, and
// OnNewBatch is not called (no sticky partition is there). The caller
// holds mu.
func (t *topicState) newBatchIndex(pp *partition, chosen int32, mapped bool) (int32, bool) {
	if mapped || t.writable == nil || t.cons == nil {
		return chosen, true
	}
	i, found := slices.BinarySearchFunc(t.writable, pp.id, func(w *partition, id int32) int { return cmp.Compare(w.id, id) })
	return int32(i), found
}

// rangeError is the ErrInvalidPartition of a partitioner's choice out of
// range: chosen among n, the topic's partitions or, with writable, those
// of them that take appends.
type rangeError struct {
	topic    string
	chosen   int32
	n        int
	writable bool
}

func (e *rangeError) Error() string {
	if e.writable {
		return fmt.Sprintf("%v: partition %d among the %d of %s that take appends", ErrInvalidPartition, e.chosen, e.n, e.topic)
	}
	return fmt.Sprintf("%v: partition %d of %s, which has %d", ErrInvalidPartition, e.chosen, e.topic, e.n)
}

// Is makes the error match ErrInvalidPartition.
func (e *rangeError) Is(target error) bool { return target == ErrInvalidPartition }

// pending is one buffered record. Its ctx, if it may end, is kept beside
// it (batch.ctxs): most records have none, and a batch's records take
// no more memory for those that have.
type pending struct {
	r       *record.Record
	promise func(*record.Record, error)
	size    int32 // buffer space taken (a record fits in a batch: BatchMaxBytes is an int32's worth at most)
	body    int32 // record.BodySize; -1 once dropped (see drop)
}

// drop marks the record as dropped from its batch, its ctx having ended
// before the batch was sent: it is not sent, and fails with ctx's error.
// The mark is its body size, which a dropped record no longer needs (it
// is not encoded).
func (pr *pending) drop() { pr.body = -1 }

// dropped reports whether the record was dropped from its batch.
func (pr *pending) dropped() bool { return pr.body < 0 }

// recCtx is the ctx of a batch's record that may end.
type recCtx struct {
	i   int // the record's index in batch.recs
	ctx context.Context
}

// batch is one partition's batch: the records and, once sealed, their
// encoding (kept for retries). Records are encoded when the batch is
// sealed, on the partition's goroutine, not when they are produced: the
// caller's goroutine only sizes them, and a batch waiting to be sent holds
// no encoding buffer.
type batch struct {
	recs    []pending
	bytes   int64     // buffer space of recs
	size    int       // bytes of the batch encoded uncompressed (its records not dropped)
	firstTs int64     // the first record's timestamp (ms): the base of the deltas
	created time.Time // of the batch: linger and delivery timeout count from it
	ctxs    []recCtx  // the ctxs of the records that have one that may end, by index
	dropped int       // records dropped (see pending.dropped), all with a ctx
	urgent  bool      // a ProduceSync waits for its records: it lingers no more (see unlinger)
	filled  bool      // queued as full, no record fitting the room left (see full): more are likely coming

	// While the batch lingers: the AfterFuncs that wake the partition's
	// goroutine when a record's ctx ends (see watch).
	stops   []func() bool
	watched <-chan struct{} // Done of the last ctx watched

	hot bool // keyless records may join it without the topic's lock (see markHotLocked)

	sealed   bool
	data     record.Batch            // the encoded batch, in the partition's builder, or compressed in its comp (see seal)
	hdr      [record.HeaderSize]byte // data's header as encoded, restored before a retry
	pidGen   uint64                  // producer id generation, when idempotent
	baseSeq  int32                   // first sequence number, when idempotent
	pid      int64                   // producer id and epoch, when idempotent
	epoch    int16                   //
	unsure   bool                    // an attempt may have been appended
	earlier  bool                    // ... an attempt before the latest (see maybeWritten)
	sent     bool                    // handed to the Client at least once: its records are fixed
	attempts int                     //
	refusals uint32                  // the partition's refusals when its latest attempt was sent (see partition.noteRefusal)
}

func (p *Producer) newBatch(created time.Time) *batch {
	b := p.batches.Get().(*batch)
	b.created = created
	return b
}

// reset empties a batch, keeping its buffers.
func (b *batch) reset() {
	b.unwatch()
	clear(b.recs)
	clear(b.ctxs)
	*b = batch{recs: b.recs[:0], ctxs: b.ctxs[:0], stops: b.stops[:0]}
}

// outcome is the error record i of a batch that failed with err gets:
// err, or its ctx's error if it was dropped from the batch.
func (b *batch) outcome(i int, err error) error {
	if b.recs[i].dropped() {
		return b.ctxOf(i).Err()
	}
	return err
}

// ctxOf returns the ctx of record i, or nil if it has none that may end.
func (b *batch) ctxOf(i int) context.Context {
	k, ok := slices.BinarySearchFunc(b.ctxs, i, func(c recCtx, i int) int { return c.i - i })
	if !ok {
		return nil
	}
	return b.ctxs[k].ctx
}

// live is the number of records the batch sends: those not dropped.
func (b *batch) live() int { return len(b.recs) - b.dropped }

// add takes pr, whose ctx is ctx (nil if it can never end), as the
// batch's next record if the batch, encoded, stays within max bytes (an
// empty batch takes any record), and reports whether it did. It sizes the
// record as record.Builder will encode it in encode. A dropped record
// (from a batch being split) is taken as it is, and not sized: it is not
// encoded. addHot writes out its work for a record not dropped joining a
// batch not empty: a change here is one there too (TestAddHotIsAdd).
func (b *batch) add(pr *pending, ctx context.Context, max int) bool {
	if pr.dropped() {
		b.dropped++
	} else {
		ts := pr.r.Timestamp.UnixMilli()
		i := b.live()
		if i == 0 {
			b.firstTs, b.size = ts, record.HeaderSize
		}
		n := record.SizeWithDeltas(int(pr.body), ts-b.firstTs, int64(i))
		// n > max-b.size, not b.size+n > max: on a 32-bit platform two
		// records of over 1 GiB (a BatchMaxBytes past that) would wrap
		// the sum, and the record join a batch past max.
		if i > 0 && n > max-b.size {
			return false
		}
		b.size += n
	}
	if ctx != nil {
		b.ctxs = append(b.ctxs, recCtx{i: len(b.recs), ctx: ctx})
	}
	b.recs = append(b.recs, *pr)
	b.bytes += int64(pr.size)
	return true
}

// full reports whether no record can join the batch within max bytes: not
// even the smallest one (nil key and value, no headers, a timestamp delta
// of 0) fits in the room left.
func (b *batch) full(max int) bool {
	if max-b.size >= minRecordMax {
		// The hot path, called for every record (and inlined): the
		// smallest record fits whatever its offset delta, and needs no
		// sizing.
		return false
	}
	return b.fullSized(max)
}

// fullSized is full for a batch within minRecordMax of max: it sizes the
// smallest record at the batch's next offset delta.
func (b *batch) fullSized(max int) bool {
	i := b.live()
	return i > 0 && record.SizeWithDeltas(minBody, 0, int64(i)) > max-b.size // not b.size+...: see add
}

// minBody is the smallest record's record.BodySize.
var minBody = record.BodySize(nil, nil, nil)

// minRecordMax is the smallest record's size at the largest offset delta:
// the most room that record can need in a batch.
var minRecordMax = record.SizeWithDeltas(minBody, 0, math.MaxInt64)

// encode encodes the batch's records, those dropped excepted, into bld.
func (b *batch) encode(bld *record.Builder) {
	bld.Grow(b.size)
	for i := range b.recs {
		if !b.recs[i].dropped() {
			bld.Add(b.recs[i].r)
		}
	}
}

// dropEnded marks the records whose ctx has ended as dropped, and
// reports whether it marked any. Only for a batch never sent: the
// records of a batch sent once are fixed, since a retry must send the
// same records again under the same sequence numbers.
func (b *batch) dropEnded() bool {
	if len(b.ctxs) == b.dropped {
		return false // the hot path: no record has a ctx that may end
	}
	any := false
	for _, c := range b.ctxs {
		pr := &b.recs[c.i]
		if !pr.dropped() && c.ctx.Err() != nil {
			pr.drop()
			b.dropped++
			any = true
		}
	}
	if any {
		b.resize()
	}
	return any
}

// anyEnded reports whether the ctx of one of the batch's records not
// dropped has ended.
func (b *batch) anyEnded() bool {
	if len(b.ctxs) == b.dropped {
		return false
	}
	for _, c := range b.ctxs {
		if !b.recs[c.i].dropped() && c.ctx.Err() != nil {
			return true
		}
	}
	return false
}

// resize sizes the batch anew, without its dropped records, as add does.
func (b *batch) resize() {
	b.size = record.HeaderSize
	n := int64(0)
	for i := range b.recs {
		pr := &b.recs[i]
		if pr.dropped() {
			continue
		}
		ts := pr.r.Timestamp.UnixMilli()
		if n == 0 {
			b.firstTs = ts
		}
		b.size += record.SizeWithDeltas(int(pr.body), ts-b.firstTs, n)
		n++
	}
}

// watch makes f run when ctx ends, while the batch lingers (see
// partition.ctxEnded), unless the last record added had a ctx with the
// same Done channel (the records of one ProduceSync, say): one AfterFunc
// per run of records, not a goroutine per record. ctx's Done and
// AfterFunc methods are the application's code when ctx is its own type,
// and may panic: watched is set once the AfterFunc is, so that a record
// after such a panic is watched all the same (see watchLocked).
func (b *batch) watch(ctx context.Context, f func()) {
	done := ctx.Done()
	if done == b.watched {
		return
	}
	b.stops = append(b.stops, context.AfterFunc(ctx, f))
	b.watched = done
}

// unwatch stops watching the batch's ctxs (its records are about to be
// sealed, or done).
func (b *batch) unwatch() {
	for i, stop := range b.stops {
		stop()
		b.stops[i] = nil
	}
	b.stops, b.watched = b.stops[:0], nil
}

// partition buffers and sends the records of one partition. Its batches
// are owned by one goroutine at a time (drain), started when the first
// record arrives: draining is set while it runs, and then only.
type partition struct {
	t        *topicState
	p        *Producer
	id       int32
	wake     chan struct{} // buffered: a batch is full, a flush began, or Close
	refusals atomic.Uint32 // batches refused with KAFKA_STORAGE_ERROR or a leader's error (see noteRefusal)
	ackedAt  atomic.Uint64 // the topic's healthLooks when a batch was last acknowledged while a look-up was under way (see writableAgain)

	mu       sync.Mutex
	cur      *batch    // open batch, or nil; never empty, none of its records dropped (see addHot)
	queue    []*batch  // full batches waiting, oldest first
	spare    *batch    // a sent batch, empty, for the next one (see reuse)
	draining bool      // the partition's goroutine runs
	idle     bool      // ... and waits for records (wake it)
	parked   bool      // ... and waits, for records, a batch's linger or the requests in flight: it keeps no buffers (see parkLocked)
	idleAt   time.Time // when it began to wait
	placing  int       // records addOrAbort turned back, being placed again (see buffered)

	ctxEnded  atomic.Bool // a watched record's ctx ended: lingerLeft looks whether one of the open batch's did
	onCtxDone func()      // sets ctxEnded and wakes the goroutine (see batch.watch)

	pipe *pipeline // with an AsyncClient and MaxInFlight > 1, else nil

	failures failureLog // the run of failed batches (see logFailure)

	// Owned by the draining goroutine.
	bld    *record.Builder // encodes the batch being sent, without a codec; pooled while the goroutine waits (see parkLocked)
	comp   *[]byte         // with a codec, the batch being sent, compressed (see seal); pooled as bld is
	req    api.ProduceRequest
	pidGen uint64 // producer id generation the sequence numbers are of
	seq    int32  // next sequence number
}

func newPartition(t *topicState, id int32) *partition {
	pp := &partition{t: t, p: t.p, id: id, wake: make(chan struct{}, 1)}
	pp.onCtxDone = func() {
		pp.ctxEnded.Store(true)
		pp.wakeUp()
	}
	pp.req = api.ProduceRequest{Topic: t.name, Partition: id, Acks: t.p.cfg.acks}
	if c, ok := t.p.client.(AsyncClient); ok && t.p.cfg.maxInFlight > 1 {
		pp.pipe = newPipeline(c, t.p.cfg.maxInFlight)
	}
	return pp
}

// trickleGap is how long a partition's goroutine must have waited for
// records before a record that wakes it yields to it (with linger 0): in
// a burst the records come closer together than that, and batch.
const trickleGap = 50 * time.Microsecond

// idleKeep is how long a partition's goroutine waits for records before
// it ends.
const idleKeep = time.Second

// deadlines gives each request of a partition's goroutine a context that
// ends at its batch's delivery deadline, with one timer for the goroutine
// rather than a context and a timer per request.
type deadlines struct {
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
	timer  *time.Timer // cancels ctx at the deadline
}

// start returns the context of a request whose batch must be delivered
// by deadline.
func (d *deadlines) start(deadline time.Time) context.Context {
	if d.ctx == nil {
		d.ctx, d.cancel = context.WithCancel(d.parent)
		d.timer = time.AfterFunc(time.Until(deadline), d.cancel)
		return d.ctx
	}
	d.timer.Reset(time.Until(deadline))
	return d.ctx
}

// stop ends the request's deadline. If the timer has fired (or is
// firing), the next request gets a new context.
func (d *deadlines) stop() {
	if !d.timer.Stop() {
		d.cancel()
		d.ctx = nil
	}
}

func (d *deadlines) close() {
	if d.ctx != nil {
		d.timer.Stop()
		d.cancel()
	}
}

func (pp *partition) wakeUp() {
	select {
	case pp.wake <- struct{}{}:
	default:
	}
}

// syncParts are the partitions a ProduceSync's records joined while
// batches linger (see addRecord), each once, in the order first joined.
// Only the ProduceSync's goroutine touches it.
type syncParts struct {
	list []*partition
	set  map[*partition]bool // list's, once it is longer than syncPartsScan
}

// syncPartsScan is how long syncParts's list is searched before it keeps
// a set too: a ProduceSync of many records to many partitions would
// otherwise search it once per record.
const syncPartsScan = 16

func (sp *syncParts) add(pp *partition) {
	switch {
	case sp.set != nil:
		if sp.set[pp] {
			return
		}
		sp.set[pp] = true
	case slices.Contains(sp.list, pp):
		return
	case len(sp.list) == syncPartsScan:
		sp.set = make(map[*partition]bool, 2*syncPartsScan)
		for _, q := range sp.list {
			sp.set[q] = true
		}
		sp.set[pp] = true
	}
	sp.list = append(sp.list, pp)
}

// unlinger ends the linger of the open batch of each partition, for a
// ProduceSync that buffered its records there and waits for them: as
// kgo's ProduceSync un-lingers the partitions it produced to, once it has
// produced every record, so that those of one partition go in one batch
// (as far as BatchMaxBytes allows) and at once. The open batch may be a
// later one than a record's (that one went, full): it goes at once too.
func (sp *syncParts) unlinger() {
	for _, pp := range sp.list {
		pp.mu.Lock()
		if b := pp.cur; b != nil && !b.urgent {
			b.urgent = true
			pp.wakeUp() // from its linger, if the goroutine waits for it
		}
		pp.mu.Unlock()
	}
}

// add appends a record to the open batch, opening one if needed, and
// starts the partition's goroutine if it is not running. yield reports
// that the record starts a trickle: the caller yields the processor to
// the partition's goroutine once it holds no lock (see addRecord).
func (pp *partition) add(pr pending, ctx context.Context, sp *syncParts) (yield bool, err error) {
	_, yield, err = pp.addRecord(pr, ctx, addNew, sp)
	return yield, err
}

// addOrAbort is add, except that it returns false, buffering nothing,
// when the record would open a new batch; then the caller places the
// record with addPlaced here, or calls placed and places it elsewhere
// (or fails it).
func (pp *partition) addOrAbort(pr pending, ctx context.Context, sp *syncParts) (ok, yield bool, err error) {
	return pp.addRecord(pr, ctx, abortNew, sp)
}

// addPlaced is add for a record that addOrAbort turned back: it ends the
// record's wait (placing) as it adds it, under the same lock, so that the
// partition's goroutine never sees the record neither placing nor
// buffered (see buffered).
func (pp *partition) addPlaced(pr pending, ctx context.Context, sp *syncParts) (yield bool, err error) {
	_, yield, err = pp.addRecord(pr, ctx, addTurnedBack, sp)
	return yield, err
}

// placed ends the wait of a record that addOrAbort turned back, placed
// elsewhere or failed.
func (pp *partition) placed() {
	pp.mu.Lock()
	pp.placing--
	pp.mu.Unlock()
}

// How addRecord adds a record.
const (
	addNew        = iota // opening a new batch if need be
	abortNew             // not if it would open one (addOrAbort)
	addTurnedBack        // addNew, for a record abortNew turned back (addPlaced)
)

// addHot appends a record without a key to the open batch if that batch
// is marked hot (see markHotLocked), under pp.mu alone, without the
// topic's lock, and reports whether it did. Declined (no batch open,
// none marked, the record does not fit, or closed), the record is placed
// under the topic's lock instead, as if this had not been tried: nothing
// changed. Nor does addHot start the partition's goroutine, whose
// failure to start fails records, running their promises (see produce):
// while a batch is open it runs (draining), since addRecord sets
// draining as it opens one, under pp.mu, and draining is cleared only
// with no batch open (the goroutine's end, or its failed start).
//
// It is addRecord's work for that case alone, where the goroutine runs
// and the batch stays open: no batch to open, no goroutine to start. It
// was addRecord's addHot, which checked for the cases that cannot arise
// here and kept more state across its calls: some 10 instructions a
// record more (callgrind). The lines it shares with addRecord, from the
// watch to the full batch queued, are written out in both: a function of
// their own, too large to be inlined, cost some 12 instructions a record
// more (callgrind, BenchmarkProduce, 2026-12-07). So is batch.add's work
// for a record not dropped (what produce and place hand it): the call,
// with what addHot keeps across it, cost some 24 instructions a record
// (callgrind, BenchmarkProduce, 2026-12-07); TestAddHotIsAdd holds the
// two alike. Of add's work it leaves out what only a batch's first
// record does (an empty batch takes any record, and sets firstTs), and
// takes live() as len(b.recs): the open batch (cur) always holds a
// record, and none dropped. Only addRecord opens one, adding its record
// at once; unaddLocked, which takes a record out again, drops the batch
// that leaves empty; records are dropped (dropEnded) only from batches
// taken off cur to be sent, and split's halves go to the queue
// (TestOpenBatchHoldsLiveRecords).
//
// Nor does the goroutine wait for records (idle) while a batch is open:
// it is idle only once it found neither an open batch nor a full one,
// and only addRecord opens one, which ends its wait (cur set, idle
// cleared, under pp.mu). So the record wakes it only if it fills the
// batch, and never starts a trickle (see addRecord): the caller need not
// yield.
//
// Without watch (produce's own try, which has no deferred undo), nor does
// it run ctx's methods, which are the application's code when ctx is its
// own type (done is ctx's Done, taken before; nil with watch, which
// does not look at it): a record whose ctx the batch would have to
// watch anew while it lingers (a Done channel other than the last
// record's: see batch.watch) is declined. produce then
// tries again through placeRecord, whose deferred undo gives the record
// back should ctx's AfterFunc method panic: with watch, addHot watches
// ctx as addRecord does (see watchLocked). The records of a run with the
// same ctx (one ProduceSync's, a server's ctx shared) after its first
// take the hot path at once.
func (pp *partition) addHot(pr *pending, ctx context.Context, done <-chan struct{}, watch bool, sp *syncParts) bool {
	pp.mu.Lock()
	b := pp.cur
	cfg := &pp.p.cfg
	linger := cfg.linger > 0
	if b == nil || !b.hot || pp.p.closed.Load() || done != nil && linger && done != b.watched && !watch {
		pp.mu.Unlock()
		return false
	}
	// b.add(pr, ctx, cfg.batchMaxBytes), written out (see above): pr,
	// a record being produced, is not dropped, and b, the open batch,
	// holds records, none dropped (see above): firstTs is its first
	// record's, and pr joins it only within the limit.
	ts := pr.r.Timestamp.UnixMilli()
	n := record.SizeWithDeltas(int(pr.body), ts-b.firstTs, int64(len(b.recs)))
	if n > cfg.batchMaxBytes-b.size { // not b.size+n: see add
		pp.mu.Unlock()
		return false
	}
	b.size += n
	if ctx != nil {
		b.ctxs = append(b.ctxs, recCtx{i: len(b.recs), ctx: ctx})
	}
	b.recs = append(b.recs, *pr)
	b.bytes += int64(pr.size)
	if watch && ctx != nil && linger {
		pp.watchLocked(ctx) // see addRecord
	}
	pr.r.Partition = pp.id
	if sp != nil && linger {
		sp.add(pp)
	}
	full := b.full(cfg.batchMaxBytes)
	if full {
		pp.queueFullLocked(b)
	}
	pp.mu.Unlock()
	if full {
		pp.wakeUp()
	}
	return true
}

// queueFullLocked queues b, the open batch, which no record can join
// (batch.full): it goes without lingering, as Kafka's producer sends a
// batch once batch.isFull(). The caller holds pp.mu, and wakes the
// partition's goroutine once it released it.
func (pp *partition) queueFullLocked(b *batch) {
	b.filled = true
	pp.queue = append(pp.queue, b)
	pp.cur = nil
}

// addRecord is add, addOrAbort and addPlaced; it takes pp.mu itself. A
// ProduceSync's record (sp not nil) adds pp to sp when batches linger,
// for ProduceSync to end their linger once it has buffered its records.
func (pp *partition) addRecord(pr pending, ctx context.Context, how int, sp *syncParts) (ok, yield bool, err error) {
	pp.mu.Lock()
	if how == addTurnedBack {
		pp.placing--
	}
	if pp.p.closed.Load() {
		pp.mu.Unlock()
		return false, false, ErrClosed
	}
	max := pp.p.cfg.batchMaxBytes
	if b := pp.cur; b == nil || !b.add(&pr, ctx, max) {
		if b != nil { // full
			// Not marked filled (see queueFullLocked): that guesses that
			// a record follows, where pr is one, and delivered sees it
			// (buffered) until b's acknowledgement is waited for. The
			// goroutine takes b only once this lock is released, with
			// pr in a batch opened below or counted in placing, and it
			// delivers b before it takes pr's batch; should pr go to
			// another partition (placeNew), none follows b here.
			pp.queue = append(pp.queue, b)
			pp.cur = nil
			pp.wakeUp()
		}
		if how == abortNew {
			// The record is on its way, likely back here, in a new
			// batch (see addPlaced).
			pp.placing++
			pp.mu.Unlock()
			return false, false, nil
		}
		pp.cur = pp.newBatchLocked(time.Now())
		pp.cur.add(&pr, ctx, max) // a new batch takes any record
	}
	if ctx != nil && pp.p.cfg.linger > 0 {
		// A batch waits for records only while it lingers: otherwise it
		// waits for the records before it, which a record's ctx cannot
		// overtake (promises run in order).
		pp.watchLocked(ctx)
	}
	pr.r.Partition = pp.id
	if sp != nil && pp.p.cfg.linger > 0 {
		sp.add(pp)
	}
	start, idle := !pp.draining, pp.idle
	// A record that finds the goroutine parked and opens a batch to go at
	// once: the first of a trickle, unless the goroutine parked only just
	// now (a burst, whose next records should join this batch).
	trickle := pp.p.cfg.linger == 0 && (start || idle && pp.cur.created.Sub(pp.idleAt) >= trickleGap)
	full := pp.cur.full(max)
	if full {
		pp.queueFullLocked(pp.cur)
	}
	if start {
		pp.t.sending.Add(1)
	}
	pp.draining, pp.idle = true, false
	pp.mu.Unlock()
	if idle || full {
		pp.wakeUp()
	}
	if start && !pp.p.spawn(pp.drain) {
		// Close came first: nobody will send these. The partition held no
		// batch (its goroutine ends only with none), so pr opened bs[0],
		// and is its first record. Since pp.mu was released above, the
		// records of other Produce calls, which found draining set, may
		// have joined bs[0] (and batches after it, once it was full):
		// they fail with pr's, ErrClosed, here (see failTaken).
		pp.mu.Lock()
		bs := pp.takeAllLocked()
		pp.draining = false
		pp.t.sending.Add(-1)
		pp.mu.Unlock()
		pp.failTaken(bs, ErrClosed, int64(pr.size))
		return true, false, nil
	}
	// With trickle the caller yields (once it holds no lock), so that the
	// partition's goroutine runs on its thread at once. Left alone it
	// waits until the scheduler has woken another thread to take it,
	// 10–30 µs on a small VM and most of the produce→consume latency of a
	// trickle of records, while the caller's goroutine typically returns
	// and waits itself. Under load the goroutine is busy sending, not
	// parked, and in a burst it parked only just now: nobody yields, and
	// the records that follow join the batch while it wakes.
	return true, trickle, nil
}

// watchLocked watches ctx, the ctx of the record addRecord (or addHot)
// has just added to the open batch, its last, under pp.mu (see
// batch.watch). ctx's Done and AfterFunc methods are the application's
// code when ctx is its own type, and may panic: as for a partitioner's
// panic (see placeRecord), the panic goes on to the Produce's caller,
// whose deferred undo gives the record back, with its buffer space, but
// only once the record is out of the batch again (a batch it opened,
// empty, with it) and pp.mu is released. Left locked, it held up the
// partition's records, its goroutine and Close for ever. addRecord and
// addHot run it before anything else of the record changes (its
// Partition, the goroutine started), so that nothing more needs undoing.
// The defer costs only records with a ctx that may end, while batches
// linger; AfterFunc costs them far more.
func (pp *partition) watchLocked(ctx context.Context) {
	ok := false
	defer func() {
		if !ok {
			pp.unaddLocked()
			pp.mu.Unlock()
		}
	}()
	pp.cur.watch(ctx, pp.onCtxDone)
	ok = true
}

// unaddLocked takes the last record added out of the open batch, and
// drops the batch if that leaves it empty (the record opened it). The
// record has a ctx (it is the last of ctxs), and is not dropped.
func (pp *partition) unaddLocked() {
	b := pp.cur
	n, c := len(b.recs)-1, len(b.ctxs)-1
	b.bytes -= int64(b.recs[n].size)
	b.recs[n] = pending{}
	b.recs = b.recs[:n]
	b.ctxs[c] = recCtx{}
	b.ctxs = b.ctxs[:c]
	if n > 0 {
		b.resize()
		return
	}
	pp.cur = nil
	b.reset()
	pp.p.batches.Put(b)
}

// newBatchLocked returns an empty batch: the spare, or one from the pool.
func (pp *partition) newBatchLocked(created time.Time) *batch {
	b := pp.spare
	if b == nil {
		return pp.p.newBatch(created)
	}
	pp.spare = nil
	b.created = created
	return b
}

// reuse empties a batch that is done and keeps it as the partition's
// spare, so that the next batch starts with the buffers this one grew: a
// sync.Pool drops its batches at every other collection, and under load
// (collections every few milliseconds) a 1 MB batch then grows again by
// copying itself. A second spare goes to the pool, and so does a batch
// done while the partition's goroutine waits (see parkLocked): a partition
// keeps buffers only while it is sending. Once the producer is closed a
// batch is neither kept nor pooled, but left to the collector: the
// batches that Close fails are done after the partition's goroutine
// dropped its spare (see drain), and a closed producer that the
// application still references held one batch, grown to the largest
// the partition sent, per partition written to. Such a batch still
// stops watching its records' ctxs (unwatch), which would otherwise keep
// the closed producer referenced for as long as they live.
func (pp *partition) reuse(b *batch) {
	if pp.p.closed.Load() {
		b.unwatch()
		return
	}
	b.reset()
	pp.mu.Lock()
	// closed again, under mu: a Close since the check above may have
	// dropped the spare already (drain's dropSpareLocked, under mu).
	if pp.spare == nil && !pp.parked && !pp.p.closed.Load() {
		pp.spare, b = b, nil
	}
	pp.mu.Unlock()
	if b != nil {
		pp.p.batches.Put(b)
	}
}

// dropSpareLocked hands the spare batch, the builder and the compressed
// batch's buffer back to their pools, as the partition's goroutine ends or begins to wait (park), or
// drops them once the producer is closed (see reuse).
func (pp *partition) dropSpareLocked() {
	closed := pp.p.closed.Load()
	if pp.spare != nil {
		if !closed {
			pp.p.batches.Put(pp.spare)
		}
		pp.spare = nil
	}
	if pp.bld != nil {
		if !closed {
			pp.p.builders.Put(pp.bld)
		}
		pp.bld = nil
	}
	if pp.comp != nil {
		if !closed {
			pp.p.comps.Put(pp.comp)
		}
		pp.comp = nil
	}
}

// park marks the partition's goroutine as waiting (for records, a
// batch's linger or the requests in flight) and hands its buffers back to
// the pools (see dropSpareLocked); drain's next pass ends the wait. A waiting
// partition holds no builder and no spare batch: they are sized by the
// largest batch it sent lately (up to BatchMaxBytes of encoding, and a
// slot per record), and kept by every partition written to within the
// last second, they made memory grow with the partition count, far past
// MaxBufferedBytes (200 partitions sent a 1 MB batch each: 177 MiB
// held, with 4 MiB buffered at most). The pools hand them to the
// partitions that send next.
func (pp *partition) parkLocked() {
	pp.parked = true
	pp.dropSpareLocked()
}

// takeAllLocked removes and returns every batch not in flight, oldest
// first.
func (pp *partition) takeAllLocked() []*batch {
	bs := append([]*batch(nil), pp.queue...)
	clear(pp.queue)
	pp.queue = pp.queue[:0]
	if pp.cur != nil {
		bs = append(bs, pp.cur)
		pp.cur = nil
	}
	return bs
}

// drain sends the partition's batches one request at a time until none
// is left, honouring Linger, and fails them all with ErrClosed once the
// producer is closed.
func (pp *partition) drain() {
	p := pp.p
	var timer *time.Timer
	dl := deadlines{parent: p.ctx}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
		dl.close()
	}()
	for {
		pp.mu.Lock()
		pp.parked = false
		if p.closed.Load() {
			if pp.pipe.running() {
				// The batches in flight complete first (in order).
				pp.mu.Unlock()
				pp.pipe.stop()
				continue
			}
			bs := pp.takeAllLocked()
			pp.draining = false
			pp.t.sending.Add(-1)
			pp.dropSpareLocked()
			pp.mu.Unlock()
			for _, b := range bs {
				pp.fail(b, ErrClosed)
			}
			return
		}
		var b *batch
		switch {
		case len(pp.queue) > 0:
			b = pp.queue[0]
			n := copy(pp.queue, pp.queue[1:])
			pp.queue[n] = nil
			pp.queue = pp.queue[:n]
		case pp.cur != nil:
			if wait := pp.lingerLeft(); wait > 0 {
				pp.parkLocked()
				pp.mu.Unlock()
				if timer == nil {
					timer = time.NewTimer(wait)
				} else {
					timer.Reset(wait)
				}
				select {
				case <-timer.C:
				case <-pp.wake:
				case <-p.done:
				}
				continue
			}
			b = pp.cur
			pp.cur = nil
			pp.ctxEnded.Store(false)
		case pp.idle:
			// Idle for idleKeep with nothing to send: the goroutine ends
			// (addRecord starts another), and the acker with it.
			if pp.pipe.running() {
				pp.mu.Unlock()
				pp.pipe.stop()
				continue // records may have come meanwhile
			}
			pp.draining, pp.idle = false, false
			pp.t.sending.Add(-1)
			pp.dropSpareLocked()
			pp.mu.Unlock()
			return
		default:
			if pp.pipe.busy() {
				// Nothing to send while requests are in flight: wait for
				// records (addRecord wakes an idle goroutine) or for the
				// last request to complete (the acker wakes it), then look
				// again. The goroutine ends only once none is in flight.
				pp.idle, pp.idleAt = true, time.Now()
				pp.parkLocked()
				pp.mu.Unlock()
				select {
				case <-pp.wake:
				case <-p.done:
				}
				pp.mu.Lock()
				pp.idle = false
				pp.mu.Unlock()
				continue
			}
			// Nothing to send: wait a while for more before ending, so
			// that a steady trickle of records (linger 0, one record a
			// request) finds the goroutine running, its stack grown.
			pp.idle, pp.idleAt = true, time.Now()
			pp.parkLocked()
			pp.mu.Unlock()
			if timer == nil {
				timer = time.NewTimer(time.Duration(p.idleKeep.Load()))
			} else {
				timer.Reset(time.Duration(p.idleKeep.Load()))
			}
			select {
			case <-timer.C: // still idle: the next pass ends the goroutine
			case <-pp.wake:
				pp.mu.Lock()
				pp.idle = false
				pp.mu.Unlock()
			case <-p.done:
			}
			continue
		}
		pp.mu.Unlock()
		pp.send(b, &timer, &dl)
		pp.t.maybeRefresh(pp, &dl)
	}
}

// nextDeadline is the delivery deadline of the next batch the partition
// sends: the oldest waiting, or one opened now if none is.
func (pp *partition) nextDeadline() time.Time {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	b := pp.cur
	if len(pp.queue) > 0 {
		b = pp.queue[0]
	}
	if b == nil {
		return time.Now().Add(pp.p.cfg.deliveryTimeout)
	}
	return pp.p.deadlineOf(b)
}

// lingerLeft is how long the open batch may still wait for records: no
// more once a flush began, a ProduceSync that buffered records on the
// partition ended it (see unlinger) or a record's ctx ended (its promise
// should not wait for the linger; the batch goes without it), nor while
// a Produce waits for buffer space, which the lingering batches may hold
// (as Kafka's RecordAccumulator sends its batches once its memory is
// exhausted: reserve wakes the partitions then).
func (pp *partition) lingerLeft() time.Duration {
	if pp.p.cfg.linger <= 0 || pp.p.flushing.Load() > 0 || pp.p.space.n.Load() > 0 || pp.cur.urgent {
		return 0
	}
	if pp.ctxEnded.Load() {
		// Set by the ctx of a record of this batch, or of a batch
		// before it, still watched while it waited in the queue (full)
		// or until its send began: only the batch's own records cut
		// its linger. Cleared before the look, so that a ctx of the
		// batch that ends after it sets it again (its AfterFunc runs
		// once the ctx has ended).
		pp.ctxEnded.Store(false)
		if pp.cur.anyEnded() {
			return 0
		}
	}
	return time.Until(pp.cur.created.Add(pp.p.cfg.linger))
}
