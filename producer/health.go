package producer

import (
	"context"
	"slices"
	"time"

	"github.com/runnel/runnel/api"
)

// storageCode is KAFKA_STORAGE_ERROR's code: a batch refused with it calls
// for a look at which partitions take appends (see healthSoon).
var storageCode = api.Code(api.ErrStorage)

// What a HealthClient says of a topic's partitions, and what the producer
// makes of it: the records that may go to any partition (see
// ConsistentPartitioner) go to those that take appends, as Kafka's Java
// producer partitions them among the available partitions and franz-go
// among the writable ones.

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
	if len(down) == 0 {
		return nil, nil
	}
	down = slices.Clone(down) // the Client's to reuse
	slices.Sort(down)
	return slices.Compact(down), nil
}

// firstHealth is the answer for a topic the producer is about to write to
// first: nil without a HealthClient, or when the call fails, which holds
// the record no longer than DeliveryTimeout (as the look-up of its
// partition count).
func (p *Producer) firstHealth(ctx context.Context, topic string) []int32 {
	if p.health == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.deliveryTimeout)
	defer cancel()
	down, _ := p.unwritable(ctx, topic)
	return down
}

// lookHealth asks the HealthClient which of the topic's partitions refuse
// appends, and takes the answer (see setDown). An error changes nothing.
func (t *topicState) lookHealth(ctx context.Context) {
	if t.p.health == nil {
		return
	}
	ticket := t.healthLooks.Add(1)
	down, err := t.p.unwritable(ctx, t.name)
	if err != nil {
		return
	}
	t.setDown(down, ticket)
}

// healthSoon runs lookHealth on a goroutine of its own, which ends by
// deadline (the delivery deadline of the batch whose refusal called for
// it) or Close, unless one is running: a partition's batch was refused
// with KAFKA_STORAGE_ERROR, and the records that may go elsewhere should,
// without waiting for it.
func (t *topicState) healthSoon(deadline time.Time) {
	if t.p.health == nil || !t.healthOnce.CompareAndSwap(false, true) {
		return
	}
	if !t.p.spawn(func() {
		defer t.healthOnce.Store(false)
		ctx, cancel := context.WithDeadline(t.p.ctx, deadline)
		defer cancel()
		t.lookHealth(ctx)
	}) {
		t.healthOnce.Store(false) // closed
	}
}

// setDown takes down (sorted) as the partitions that refuse appends, unless
// a look-up begun later (ticket) answered first, or a batch appended since
// it began said otherwise (see writableAgain). It logs the change.
func (t *topicState) setDown(down []int32, ticket uint64) {
	t.mu.Lock()
	if ticket <= t.healthSet {
		t.mu.Unlock()
		return
	}
	t.healthSet = ticket
	changed := !slices.Equal(t.down, down)
	t.down = down
	t.anyDown.Store(len(down) > 0)
	t.remapLocked()
	t.mu.Unlock()
	if changed {
		t.logDown(down)
	}
}

// writableAgain forgets that partition id refuses appends, a batch sent to
// it having been appended; so do the answers of the look-ups under way,
// begun before.
func (t *topicState) writableAgain(id int32) {
	if !t.anyDown.Load() {
		return
	}
	t.mu.Lock()
	i, found := slices.BinarySearch(t.down, id)
	var down []int32
	if found {
		if len(t.down) > 1 {
			down = slices.Delete(slices.Clone(t.down), i, i+1)
		}
		t.down = down
		t.anyDown.Store(len(down) > 0)
		t.healthSet = t.healthLooks.Load()
		t.remapLocked()
	}
	t.mu.Unlock()
	if found {
		t.logDown(down)
	}
}

func (t *topicState) logDown(down []int32) {
	if len(down) == 0 {
		t.p.cfg.logger.Info("every partition takes appends again", "topic", t.name)
		return
	}
	t.p.cfg.logger.Warn("partitions refuse appends: records that may go to any partition go to the others", "topic", t.name, "partitions", down)
}

// remapLocked sets writable: the partitions of parts that take appends,
// or nil when all of them do, or none (the records then go to any, as
// Kafka's and franz-go's producers send them when no partition is
// available, retried there). The caller holds mu.
func (t *topicState) remapLocked() {
	t.writable = nil
	if len(t.down) == 0 {
		return
	}
	parts := *t.parts.Load()
	w := make([]*partition, 0, len(parts))
	for _, pp := range parts {
		if _, found := slices.BinarySearch(t.down, pp.id); !found {
			w = append(w, pp)
		}
	}
	if len(w) > 0 && len(w) < len(parts) {
		t.writable = w
	}
}
