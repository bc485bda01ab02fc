package producer

import (
	"context"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/api"
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
	parts       atomic.Pointer[[]*partition] // the topic's partitions now: a prefix of all
	all         atomic.Pointer[[]*partition] // every partition the topic has had, by id
	refreshAt   atomic.Int64                 // unix ns of the next partition count check
	refreshOnce atomic.Bool                  // a check is running
}

// topic returns the state of a topic, asking the broker for its
// partition count the first time.
func (p *Producer) topic(ctx context.Context, name string) (*topicState, error) {
	if t := p.lastTop.Load(); t != nil && t.name == name {
		return t, nil
	}
	if m := p.topics.Load(); m != nil {
		if t := (*m)[name]; t != nil {
			return t, nil
		}
	}
	n, err := p.partitions(ctx, name)
	if err != nil {
		return nil, err
	}
	p.topicsMu.Lock()
	defer p.topicsMu.Unlock()
	old := p.topics.Load()
	if old != nil {
		if t := (*old)[name]; t != nil {
			return t, nil
		}
	}
	t := &topicState{p: p, name: name, part: p.cfg.partitioner.ForTopic(name)}
	if t.part == nil {
		return nil, fmt.Errorf("%w: the partitioner's ForTopic(%q) returned nil", ErrInvalidOption, name)
	}
	t.onNew, _ = t.part.(NewBatchPartitioner)
	parts := make([]*partition, n)
	for i := range parts {
		parts[i] = newPartition(t, int32(i))
	}
	t.parts.Store(&parts)
	t.all.Store(&parts)
	t.refreshAt.Store(time.Now().Add(p.cfg.metadataMaxAge).UnixNano())
	m := map[string]*topicState{}
	if old != nil {
		m = maps.Clone(*old)
	}
	m[name] = t
	p.topics.Store(&m)
	p.lastTop.CompareAndSwap(nil, t)
	return t, nil
}

// partitions asks the broker for the partition count of a topic; a
// count below 1 is ErrUnknownTopicOrPartition.
func (p *Producer) partitions(ctx context.Context, name string) (int, error) {
	n, err := p.client.Partitions(ctx, name)
	if err == nil && n < 1 {
		err = fmt.Errorf("%w: %s has %d partitions", api.ErrUnknownTopicOrPartition, name, n)
	}
	return n, err
}

// maybeRefresh asks the broker for the topic's partition count when
// MetadataMaxAge has passed (or a partition was reported unknown: see
// refreshSoon), and follows it: partitions gained are added; when the
// topic has fewer (it was deleted and created again), later records are
// spread over those it has, while the batches already made for the others
// are retried until their delivery timeout, as Kafka's producer does. A
// partition that comes back is the same one, with its sequence numbers.
func (t *topicState) maybeRefresh(now time.Time) {
	if now.UnixNano() < t.refreshAt.Load() || !t.refreshOnce.CompareAndSwap(false, true) {
		return
	}
	defer t.refreshOnce.Store(false)
	t.refreshAt.Store(now.Add(t.p.cfg.metadataMaxAge).UnixNano())
	n, err := t.p.partitions(t.p.ctx, t.name)
	if err != nil {
		t.p.cfg.logger.Warn("cannot refresh the partition count", "topic", t.name, "err", err)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old, all := *t.parts.Load(), *t.all.Load()
	if n == len(old) {
		return
	}
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
	t.p.cfg.logger.Info("topic's partition count changed", "topic", t.name, "from", len(old), "to", n)
}

// refreshSoon makes the next maybeRefresh ask the broker.
func (t *topicState) refreshSoon() { t.refreshAt.Store(0) }

// buffer partitions a record whose buffer space is reserved and appends
// it to its partition's open batch.
func (t *topicState) buffer(pr pending) {
	t.mu.Lock()
	parts := *t.parts.Load()
	pp, err := t.choose(pr.r, parts)
	var yield bool
	if err == nil && t.onNew == nil {
		t.mu.Unlock()
		yield, err = pp.add(pr)
	} else if err == nil {
		var ok bool
		if ok, yield, err = pp.addOrAbort(pr); err == nil && !ok {
			// KIP-480: the record would start a new batch; let the
			// partitioner move on first.
			t.onNew.OnNewBatch(pp.id)
			if pp, err = t.choose(pr.r, parts); err == nil {
				yield, err = pp.add(pr)
			}
		}
		t.mu.Unlock()
	} else {
		t.mu.Unlock()
	}
	if yield {
		// The record starts a trickle (see addRecord): yield, so that the
		// partition's goroutine runs on this thread at once. Not under
		// t.mu: the goroutine's whole request would run with the topic
		// locked against every other Produce to it.
		runtime.Gosched()
	}
	if err != nil {
		t.p.release(1, int64(pr.size))
		pr.promise(pr.r, err)
	}
}

func (t *topicState) choose(r *record.Record, parts []*partition) (*partition, error) {
	i := t.part.Partition(r, len(parts))
	if i < 0 || int(i) >= len(parts) {
		return nil, fmt.Errorf("%w: partition %d of %s, which has %d", ErrInvalidPartition, i, t.name, len(parts))
	}
	return parts[i], nil
}

// pending is one buffered record.
type pending struct {
	r       *record.Record
	promise func(*record.Record, error)
	size    int32 // buffer space taken (a record fits in a batch: BatchMaxBytes is an int32's worth at most)
	body    int32 // record.BodySize
}

// batch is one partition's batch: the records and, once sealed, their
// encoding (kept for retries). Records are encoded when the batch is
// sealed, on the partition's goroutine, not when they are produced: the
// caller's goroutine only sizes them, and a batch waiting to be sent holds
// no encoding buffer.
type batch struct {
	recs    []pending
	bytes   int64     // buffer space of recs
	size    int       // bytes of the batch encoded uncompressed
	firstTs int64     // the first record's timestamp (ms): the base of the deltas
	created time.Time // of the batch: linger and delivery timeout count from it

	sealed   bool
	data     record.Batch            // the encoded batch, in the partition's builder
	hdr      [record.HeaderSize]byte // data's header as encoded, restored before a retry
	pidGen   uint64                  // producer id generation, when idempotent
	baseSeq  int32                   // first sequence number, when idempotent
	pid      int64                   // producer id and epoch, when idempotent
	epoch    int16                   //
	unsure   bool                    // an attempt may have been appended
	attempts int                     //
}

func (p *Producer) newBatch(created time.Time) *batch {
	b := p.batches.Get().(*batch)
	b.created = created
	return b
}

// reset empties a batch, keeping its buffer.
func (b *batch) reset() {
	clear(b.recs)
	*b = batch{recs: b.recs[:0]}
}

// add takes pr as the batch's next record if the batch, encoded, stays
// within max bytes (an empty batch takes any record), and reports whether
// it did. It sizes the record as record.Builder will encode it in encode.
func (b *batch) add(pr pending, max int) bool {
	ts := pr.r.Timestamp.UnixMilli()
	if len(b.recs) == 0 {
		b.firstTs, b.size = ts, record.HeaderSize
	}
	n := record.SizeWithDeltas(int(pr.body), ts-b.firstTs, int64(len(b.recs)))
	if len(b.recs) > 0 && b.size+n > max {
		return false
	}
	b.size += n
	b.recs = append(b.recs, pr)
	b.bytes += int64(pr.size)
	return true
}

// encode encodes the batch's records into bld.
func (b *batch) encode(bld *record.Builder) {
	bld.Grow(b.size)
	for i := range b.recs {
		bld.Add(b.recs[i].r)
	}
}

// partition buffers and sends the records of one partition. Its batches
// are owned by one goroutine at a time (drain), started when the first
// record arrives: draining is set while it runs, and then only.
type partition struct {
	t    *topicState
	p    *Producer
	id   int32
	wake chan struct{} // buffered: a batch is full, a flush began, or Close

	mu       sync.Mutex
	cur      *batch    // open batch, or nil
	queue    []*batch  // full batches waiting, oldest first
	spare    *batch    // a sent batch, empty, for the next one (see reuse)
	draining bool      // the partition's goroutine runs
	idle     bool      // ... and waits for records (wake it)
	idleAt   time.Time // when it began to wait

	pipe *pipeline // with an AsyncClient and MaxInFlight > 1, else nil

	// Owned by the draining goroutine.
	bld    *record.Builder // encodes the batch in flight; pooled when the goroutine ends
	req    api.ProduceRequest
	pidGen uint64 // producer id generation the sequence numbers are of
	seq    int32  // next sequence number
}

func newPartition(t *topicState, id int32) *partition {
	pp := &partition{t: t, p: t.p, id: id, wake: make(chan struct{}, 1)}
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

// add appends a record to the open batch, opening one if needed, and
// starts the partition's goroutine if it is not running. yield reports
// that the record starts a trickle: the caller yields the processor to
// the partition's goroutine once it holds no lock (see addRecord).
func (pp *partition) add(pr pending) (yield bool, err error) {
	_, yield, err = pp.addRecord(pr, false)
	return yield, err
}

// addOrAbort is add, except that it returns false, buffering nothing,
// when the record would open a new batch.
func (pp *partition) addOrAbort(pr pending) (ok, yield bool, err error) {
	return pp.addRecord(pr, true)
}

// addRecord is add and addOrAbort; it takes pp.mu itself.
func (pp *partition) addRecord(pr pending, abortOnNew bool) (ok, yield bool, err error) {
	pp.mu.Lock()
	if pp.p.closed.Load() {
		pp.mu.Unlock()
		return false, false, ErrClosed
	}
	max := pp.p.cfg.batchMaxBytes
	if b := pp.cur; b == nil || !b.add(pr, max) {
		if b != nil { // full
			pp.queue = append(pp.queue, b)
			pp.cur = nil
			pp.wakeUp()
		}
		if abortOnNew {
			pp.mu.Unlock()
			return false, false, nil
		}
		pp.cur = pp.newBatchLocked(time.Now())
		pp.cur.add(pr, max) // a new batch takes any record
	}
	pr.r.Partition = pp.id
	start, idle := !pp.draining, pp.idle
	// A record that finds the goroutine parked and opens a batch to go at
	// once: the first of a trickle, unless the goroutine parked only just
	// now (a burst, whose next records should join this batch).
	trickle := pp.p.cfg.linger == 0 && (start || idle && pp.cur.created.Sub(pp.idleAt) >= trickleGap)
	pp.draining, pp.idle = true, false
	pp.mu.Unlock()
	if idle {
		pp.wakeUp()
	}
	if start && !pp.p.spawn(pp.drain) {
		// Close came first: nobody will send these.
		pp.mu.Lock()
		bs := pp.takeAllLocked()
		pp.draining = false
		pp.mu.Unlock()
		for _, b := range bs {
			pp.fail(b, ErrClosed)
		}
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
// copying itself. A second spare goes to the pool. The spare goes back to
// the pool when the partition's goroutine ends (dropSpareLocked).
func (pp *partition) reuse(b *batch) {
	b.reset()
	pp.mu.Lock()
	if pp.spare == nil {
		pp.spare, b = b, nil
	}
	pp.mu.Unlock()
	if b != nil {
		pp.p.batches.Put(b)
	}
}

// dropSpareLocked hands the spare batch and the builder back to their
// pools as the partition's goroutine ends (no batch is in flight then).
func (pp *partition) dropSpareLocked() {
	if pp.spare != nil {
		pp.p.batches.Put(pp.spare)
		pp.spare = nil
	}
	if pp.bld != nil {
		pp.p.builders.Put(pp.bld)
		pp.bld = nil
	}
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
		if p.closed.Load() {
			if pp.pipe.running() {
				// The batches in flight complete first (in order).
				pp.mu.Unlock()
				pp.pipe.stop()
				continue
			}
			bs := pp.takeAllLocked()
			pp.draining = false
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
		case pp.idle:
			// Idle for idleKeep with nothing to send: the goroutine ends
			// (addRecord starts another), and the acker with it.
			if pp.pipe.running() {
				pp.mu.Unlock()
				pp.pipe.stop()
				continue // records may have come meanwhile
			}
			pp.draining, pp.idle = false, false
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
		pp.t.maybeRefresh(time.Now())
	}
}

// lingerLeft is how long the open batch may still wait for records.
func (pp *partition) lingerLeft() time.Duration {
	if pp.p.cfg.linger <= 0 || pp.p.flushing.Load() > 0 {
		return 0
	}
	return time.Until(pp.cur.created.Add(pp.p.cfg.linger))
}
