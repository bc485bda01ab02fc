package producer

import (
	"context"
	"slices"
	"time"

	"github.com/runnel/runnel/api"
)

// What a HealthClient says of a topic's partitions, and what the producer
// makes of it: the records that may go to any partition (see
// ConsistentPartitioner) go to those that take appends, as Kafka's Java
// producer partitions them among the available partitions and franz-go
// among the writable ones. Only a topic whose partitioner is a
// ConsistentPartitioner is asked about: no other can use the answer.

// storageCode is KAFKA_STORAGE_ERROR's code: a batch refused with it calls
// for a look at which partitions take appends (see noteRefusal).
var storageCode = api.Code(api.ErrStorage)

// leaderCodes are the codes of the errors that say a partition's leader
// moved or is not known: LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER and
// FENCED_LEADER_EPOCH, among the InvalidMetadataExceptions on which
// Kafka's Java producer refreshes its metadata (as it does on
// KAFKA_STORAGE_ERROR and UNKNOWN_TOPIC_OR_PARTITION: see storageCode,
// and partition.gone, which looks the topic up again; the others of that
// family say nothing of a partition's leader). franz-go refreshes on
// every retriable error, this producer on these only. A batch refused
// with one calls for a look, without taking its partition for refusing
// (see noteRefusal). runnel's broker gives none of them; a Client of
// your own, or a runneltest.Faults rule, may.
var leaderCodes = []int16{5, api.Code(api.ErrNotLeader), 74}

// unwritable asks the HealthClient for the partitions of topic that refuse
// appends, until ctx ends or Close; the answer sorted, without repeats.
func (p *Producer) unwritable(ctx context.Context, topic string) ([]int32, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.ctx, cancel)
	defer stop()
	down, err := p.health.UnwritablePartitions(ctx, topic)
	if err != nil {
		p.cfg.logger.Debug("cannot learn which partitions take appends", "topic", topic, "err", err)
		return nil, err
	}
	// The Client's to reuse; an id no partition has (negative) is no
	// news (those past the count are dropped when stored).
	down = slices.DeleteFunc(slices.Clone(down), func(id int32) bool { return id < 0 })
	slices.Sort(down)
	return slices.Compact(down), nil
}

// asks reports whether the producer asks a HealthClient about the topic:
// it has one, and the topic's partitioner can use the answer.
func (t *topicState) asks() bool { return t.p.health != nil && t.cons != nil }

// lookHealth asks the HealthClient which of the topic's partitions refuse
// appends, and takes the answer (see setDown), if the producer asks about
// the topic. An error changes nothing.
func (t *topicState) lookHealth(ctx context.Context) {
	if !t.asks() {
		return
	}
	t.looking.Add(1) // before the ticket: see writableAgain
	defer t.looking.Add(-1)
	t.nextLook.Store(t.p.monoNow() + int64(t.p.cfg.retryBackoff))
	ticket := t.healthLooks.Add(1)
	down, err := t.p.unwritable(ctx, t.name)
	if err != nil {
		return
	}
	t.setDown(down, ticket)
}

// lookHealthBy is lookHealth ended by deadline: that of the look-up of the
// topic's partition count it follows.
func (t *topicState) lookHealthBy(ctx context.Context, deadline time.Time) {
	if !t.asks() {
		return
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	t.lookHealth(ctx)
}

// noteRefusal tells that a batch of the partition was refused, or its
// acknowledgement failed, with err. With KAFKA_STORAGE_ERROR or an error
// of leaderCodes, the acknowledgements of batches sent before do not make
// the partition writable again (see acknowledged), and unless the
// producer takes the partition for refusing already (a retry of a batch
// refused before asks no more), it asks the HealthClient again
// (lookSoon); with KAFKA_STORAGE_ERROR it takes the partition for
// refusing at once, until the answer (markDown).
func (pp *partition) noteRefusal(err error) {
	code := api.Code(err)
	storage := code == storageCode
	if !storage && !slices.Contains(leaderCodes, code) {
		return
	}
	pp.refusals.Add(1)
	t := pp.t
	if !t.asks() || t.isDown(pp.id) {
		return
	}
	if storage {
		t.markDown(pp.id)
	}
	t.lookSoon()
}

// acknowledged tells that b was appended and acknowledged: the partition
// takes appends (see writableAgain), unless a batch was refused since b
// was sent (with an AsyncClient, an earlier batch's acknowledgement may
// come after a later one's refusal).
func (pp *partition) acknowledged(b *batch) {
	if b.refusals == pp.refusals.Load() {
		pp.t.writableAgain(pp)
	}
}

// markDown takes partition id, which refused a batch with
// KAFKA_STORAGE_ERROR, for refusing from now (the records that may go
// elsewhere should, at once), as if a look-up had answered so; the answer
// of the look-up that noteRefusal asks for next is newer, and is taken
// (see setDown), this partition's too.
func (t *topicState) markDown(id int32) {
	t.mu.Lock()
	old := t.downList()
	i, found := slices.BinarySearch(old, id)
	marked := !found && int(id) < len(*t.parts.Load())
	if marked {
		t.healthSet = t.healthLooks.Add(1) // the look-ups under way began before
		t.storeDownLocked(slices.Insert(slices.Clone(old), i, id))
	}
	now := t.downList()
	t.mu.Unlock()
	if marked {
		t.logDown(now)
	}
}

// lookSoon has lookHealth run on a goroutine of its own, at once or, if
// one is running (whose answer, as of before the call, may be ignored:
// see markDown), once more after it; but no sooner than RetryBackoff
// after the last look-up began (see waitToLook), as Kafka's producer
// waits its retry backoff between two metadata requests: refusals of
// many partitions, retried, ask a look each. Each look-up ends by
// DeliveryTimeout or Close.
func (t *topicState) lookSoon() {
	t.healthAgain.Store(true)
	if !t.healthOnce.CompareAndSwap(false, true) {
		return // the one running looks again
	}
	if !t.p.spawn(func() {
		for {
			for t.waitToLook() && t.healthAgain.Swap(false) {
				ctx, cancel := context.WithTimeout(t.p.ctx, t.p.cfg.deliveryTimeout)
				t.lookHealth(ctx)
				cancel()
			}
			t.healthOnce.Store(false)
			// A call between the last Swap and the Store left its
			// request to this goroutine: take it, unless another
			// goroutine has, or the producer is closed.
			if t.p.ctx.Err() != nil || !t.healthAgain.Load() || !t.healthOnce.CompareAndSwap(false, true) {
				return
			}
		}
	}) {
		t.healthOnce.Store(false) // closed
	}
}

// waitToLook waits until the next look-up may begin (nextLook: see
// lookSoon), and reports true; or false at once after Close, when a
// look-up would fail anyway.
func (t *topicState) waitToLook() bool {
	if d := time.Duration(t.nextLook.Load() - t.p.monoNow()); d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-t.p.ctx.Done():
		}
	}
	return t.p.ctx.Err() == nil
}

// setDown takes down (sorted) as the partitions that refuse appends, unless
// a look-up begun later (ticket) answered first; but for the partitions a
// batch of which was acknowledged since the look-up began (see
// writableAgain), which take appends. It logs a change.
func (t *topicState) setDown(down []int32, ticket uint64) {
	t.mu.Lock()
	if ticket <= t.healthSet {
		t.mu.Unlock()
		return
	}
	t.healthSet = ticket
	all := *t.all.Load()
	acked := func(id int32) bool { return int(id) < len(all) && all[id].ackedAt.Load() >= ticket }
	old := t.downList()
	down = slices.DeleteFunc(down, acked)
	if testHookAnswer != nil {
		testHookAnswer()
	}
	t.storeDownLocked(down)
	// Again once stored: writableAgain takes no lock, and may have looked
	// at down before the store, after it noted its acknowledgement.
	if now := t.downList(); slices.ContainsFunc(now, acked) {
		t.storeDownLocked(slices.DeleteFunc(slices.Clone(now), acked))
	}
	now := t.downList()
	t.mu.Unlock()
	if !slices.Equal(old, now) {
		t.logDown(now)
	}
}

// writableAgain tells that a batch of pp was appended and acknowledged: it
// takes appends, whatever an answer under way, begun before, says (see
// setDown). It takes no lock unless the producer takes pp for refusing:
// a batch costs two or three atomic operations.
func (t *topicState) writableAgain(pp *partition) {
	// A look-up not seen under way here begins after this: its answer
	// is newer than the acknowledgement (lookHealth counts itself in
	// looking before it takes its ticket). One under way has its ticket,
	// or takes one past the value noted.
	if t.looking.Load() > 0 {
		pp.ackedAt.Store(t.healthLooks.Load())
	}
	if testHookAcked != nil {
		testHookAcked()
	}
	if !t.isDown(pp.id) {
		return
	}
	id := pp.id
	t.mu.Lock()
	old := t.downList()
	i, found := slices.BinarySearch(old, id)
	if found {
		t.storeDownLocked(slices.Delete(slices.Clone(old), i, i+1))
	}
	now := t.downList()
	t.mu.Unlock()
	if found {
		t.logDown(now)
	}
}

// testHookAcked, when set (by tests), runs in writableAgain between its
// look for a look-up under way (and note of the acknowledgement) and its
// look at the partition.
var testHookAcked func()

// testHookAnswer, when set (by tests), runs in setDown between its look at
// the acknowledgements and its store of the answer.
var testHookAnswer func()

// isDown reports whether the producer takes partition id for refusing
// appends.
func (t *topicState) isDown(id int32) bool {
	_, found := slices.BinarySearch(t.downList(), id)
	return found
}

// downList is down's slice (nil if none), not to be modified.
func (t *topicState) downList() []int32 {
	if d := t.down.Load(); d != nil {
		return *d
	}
	return nil
}

// storeDownLocked stores down (sorted, not to be modified afterwards), but
// for the partitions the topic does not have (it has fewer now: those that
// come back later are new ones), and sets writable: the partitions that
// take appends, or nil when all of them do, or none (the records then go
// to any, as Kafka's and franz-go's producers send them when no partition
// is available, retried there). The caller holds mu.
//
// It unmarks the hot batch (unhotLocked) first, unless writable stays
// nil: a batch is marked hot only while writable is nil (markHotLocked),
// and while it stays so a record without a key goes where it went, to
// the sticky partition among parts. So an answer that changes nothing
// (every refresh's, MetadataMaxAge, in a healthy cluster) leaves the hot
// batch marked: unmarked at each, it sent the next record under the
// topic's lock. Nor does an answer that every partition refuses appends
// unmark it (writable nil: the records go to any, as before).
func (t *topicState) storeDownLocked(down []int32) {
	parts := *t.parts.Load()
	if len(down) > 0 && int(down[len(down)-1]) >= len(parts) {
		i, _ := slices.BinarySearch(down, int32(len(parts)))
		down = slices.Clone(down[:i]) // not the slice stored, which isDown may be reading
	}
	var w []*partition
	if len(down) > 0 {
		w = make([]*partition, 0, len(parts)-len(down))
		for _, pp := range parts {
			if _, found := slices.BinarySearch(down, pp.id); !found {
				w = append(w, pp)
			}
		}
		if len(w) == 0 {
			w = nil
		}
	}
	if w != nil || t.writable != nil {
		t.unhotLocked() // before the change (see markHotLocked)
	}
	t.writable = w
	if len(down) == 0 {
		t.down.Store(nil)
		return
	}
	t.down.Store(&down)
}

func (t *topicState) logDown(down []int32) {
	if len(down) == 0 {
		t.p.cfg.logger.Info("every partition takes appends again", "topic", t.name)
		return
	}
	t.p.cfg.logger.Warn("partitions refuse appends: records that may go to any partition go to the others", "topic", t.name, "unwritable", down)
}
