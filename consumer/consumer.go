package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
)

// Client is what a Consumer needs of a broker; *runnel.Broker satisfies
// it. Fetch must return batch bytes that the consumer may keep and that
// never change afterwards, as api.FetchedPartition promises. A Client
// closed for good answers every call with an error matching
// api.ErrBrokerClosed, as a closed *runnel.Broker does (runnel.ErrClosed);
// the consumer takes that as the end (see Records), so a Client that may
// come back (a connection being re-established) must return something
// else meanwhile, such as api.ErrRequestTimedOut. Likewise the consumer
// takes api.ErrUnknownTopicOrPartition for a partition the Client has
// answered for before as the partition gone (its topic deleted: see
// Poll), so a Client must not answer it for a partition that is only
// out of reach for a while.
type Client interface {
	// Partitions returns the number of partitions of a topic.
	Partitions(ctx context.Context, topic string) (int, error)
	// ListOffset resolves a timestamp (ms), api.Earliest or api.Latest to
	// an offset of a partition, with the ID of the topic whose partition
	// resolved it (zero if the Client knows none). The consumer names
	// that ID in the Fetches that read from the offset, so that a topic
	// deleted and created again in between is answered with
	// api.ErrUnknownTopicID, not read from the old topic's offset; an ID
	// that does not belong with the offset defeats that.
	ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (api.ListedOffset, error)
	// Fetch long-polls several partitions for records. It must not
	// modify req: the consumer reads the offsets it asked for there.
	Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error)
}

// Position sentinels of assignment.pos.
const (
	unresolved = -1 // waiting for ListOffset
	removed    = -2 // unassigned: every compare-and-swap fails
)

// errWoken cancels a Poll's fetch when the assignment changed under it.
var errWoken = errors.New("runnel/consumer: assignment changed")

// Consumer reads assigned partitions, without a consumer group: the
// application says where to start (Assign, Seek) and keeps its own
// positions if it needs them across restarts. See the package comment.
//
// Its methods are safe for concurrent use. Poll and Records are meant for
// one goroutine at a time: concurrent calls never return a record twice
// (a fetch whose partition's position moved meanwhile is dropped), but
// they waste fetches and interleave records.
type Consumer struct {
	client Client
	cfg    config // cfg.logger is never nil

	mu    sync.Mutex
	parts map[api.TopicPartition]*assignment
	// closed is set by Close, under mu; read without mu where that is
	// enough (the Records iterator, isClosed).
	closed atomic.Bool
	order  []*assignment // assignment order; fetches rotate over it
	rotate int
	// wakeCtx is cancelled (cause errWoken) when a change should end a
	// Poll's wait early, and for good (cause ErrClosed) by Close.
	wakeCtx context.Context
	wake    context.CancelCauseFunc
	polls   sync.WaitGroup // Polls in progress; Close waits for them
}

// assignment is one assigned partition.
type assignment struct {
	tp api.TopicPartition
	// pos is the next offset to return, unresolved or removed. It is
	// stored under Consumer.mu, except by the Records iterator, which
	// advances it by compare-and-swap so that a Seek always wins.
	pos    atomic.Int64
	paused atomic.Bool
	// seq is bumped, under Consumer.mu, whenever pos is set other than by
	// progress (Assign, Seek, a reset): a fetch made before carries the
	// old seq, and its answer is stale even when pos is back at the
	// offset the fetch was made at (a Seek to the same offset forgets the
	// topic ID, so the answer may be about another topic). Read without
	// mu by the Records iterator.
	seq atomic.Uint64

	// Guarded by Consumer.mu.
	at      Offset    // what to resolve when pos is unresolved
	retryAt time.Time // left out of fetches until then, after an error
	stopped bool      // left out of fetches until Seek or Assign
	// seen is set once the Client has answered for the partition at this
	// position (resolved it, or fetched from it without an error): an
	// unknown partition after that means the partition is gone, and
	// the position with it (see fetchErrorLocked).
	seen bool
	// topicID is the ID of the topic the position is in: the one
	// ListOffset gave with a resolved position, else the one the first
	// fetch that answered for the position gave (zero before, and from a
	// Client that gives none). Fetches send it, so that the Client
	// answers api.ErrUnknownTopicID, not another topic's records, once
	// the topic is deleted and created again under its name. Assign and
	// Seek clear it (an offset the application gives is taken in the
	// topic there now), and so does a reset after the partition was
	// gone; a reset after an offset out of range keeps it, while the
	// position is unresolved, as the ID last known, for resolve to tell
	// a topic created again since.
	topicID log.TopicID
}

// New returns a Consumer reading through c, with no partition assigned.
//
// Errors: ErrInvalidOption for a nil c (a nil *runnel.Broker too) or an
// option out of range.
func New(c Client, opts ...Opt) (*Consumer, error) {
	if c == nil || isNilPointer(c) {
		return nil, fmt.Errorf("%w: nil Client", ErrInvalidOption)
	}
	cfg := defaults()
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cc, ok := c.(CRCChecker); ok && !cfg.crcsSet && cc.ChecksCRCs() {
		cfg.checkCRCs = false
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	cs := &Consumer{client: c, cfg: cfg, parts: map[api.TopicPartition]*assignment{}}
	cs.wakeCtx, cs.wake = context.WithCancelCause(context.Background())
	return cs, nil
}

// checkPartition refuses, at once, a topic name Kafka would refuse and a
// negative partition: neither can ever be read, and the error belongs to
// the call that named them rather than to a later Poll.
func checkPartition(topic string, partition int32) error {
	if err := api.ValidateTopicName(topic); err != nil {
		return err
	}
	if partition < 0 {
		return fmt.Errorf("%w: partition %d", api.ErrUnknownTopicOrPartition, partition)
	}
	return nil
}

// Assign adds a partition to those Poll reads, starting at at; a partition
// already assigned gets at as its new position (and keeps being paused if
// it was). Offsets other than At are resolved on the next Poll, with the
// Client's ListOffset; errors found then (an unknown topic, say) come in
// that partition's Fetch.Err.
//
// Errors: an error matching api.ErrInvalidTopic for a name Kafka refuses
// (see api.ValidateTopicName); api.ErrUnknownTopicOrPartition for a
// negative partition; ErrInvalidOffset; ErrClosed. A topic the broker does
// not have is not an error here: it comes from Poll, and is retried.
func (c *Consumer) Assign(topic string, partition int32, at Offset) error {
	if err := checkPartition(topic, partition); err != nil {
		return err
	}
	if err := at.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	c.assignLocked(api.TopicPartition{Topic: topic, Partition: partition}, at)
	c.wakeLocked()
	return nil
}

// assignLocked assigns tp, or moves it, to at. The caller wakes a
// waiting Poll (wakeLocked), once for all the partitions it changes.
func (c *Consumer) assignLocked(tp api.TopicPartition, at Offset) {
	a := c.parts[tp]
	if a == nil {
		a = &assignment{tp: tp}
		c.parts[tp] = a
		c.order = append(c.order, a)
	}
	c.setLocked(a, at)
}

// setLocked gives a a new position and clears its error state. The
// caller wakes a waiting Poll (wakeLocked).
func (c *Consumer) setLocked(a *assignment, at Offset) {
	a.seq.Add(1)
	a.at = at
	a.stopped = false
	a.seen = false
	a.topicID = log.TopicID{}
	a.retryAt = time.Time{}
	if at.kind == kindExact {
		a.pos.Store(at.v)
	} else {
		a.pos.Store(unresolved)
	}
}

// wakeLocked ends the wait of a Poll in progress, so that it sees a
// change at once.
func (c *Consumer) wakeLocked() {
	c.wake(errWoken)
	c.wakeCtx, c.wake = context.WithCancelCause(context.Background())
}

// AssignTopic assigns every partition of topic (as many as the Client's
// Partitions reports now), each starting at at; see Assign. Partitions
// added to the topic later (CreatePartitions) are not assigned, and
// nothing tells the consumer of them: to read them, Assign them (their
// number is the Client's Partitions); calling AssignTopic again would also
// move the partitions already assigned back to at.
//
// Errors: those of Assign (checked before the Client is asked); those of
// the Client's Partitions (an error matching api.ErrUnknownTopicOrPartition
// for an unknown topic, api.ErrBrokerClosed for a closed broker); ctx's
// error.
func (c *Consumer) AssignTopic(ctx context.Context, topic string, at Offset) error {
	if err := checkPartition(topic, 0); err != nil {
		return err
	}
	if err := at.validate(); err != nil {
		return err
	}
	if c.isClosed() {
		return ErrClosed
	}
	n, err := c.client.Partitions(ctx, topic)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	for p := range n {
		c.assignLocked(api.TopicPartition{Topic: topic, Partition: int32(p)}, at)
	}
	if n > 0 {
		c.wakeLocked()
	}
	return nil
}

// Unassign stops reading a partition. A Poll waiting returns early (see
// Poll); records of the partition that it fetched are dropped; the Records iterator returns no more of
// it. Unassigning a partition that is not assigned does nothing.
func (c *Consumer) Unassign(topic string, partition int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := api.TopicPartition{Topic: topic, Partition: partition}
	a := c.parts[tp]
	if a == nil {
		return
	}
	delete(c.parts, tp)
	c.order = slices.DeleteFunc(c.order, func(x *assignment) bool { return x == a })
	a.pos.Store(removed)
	if !c.closed.Load() {
		c.wakeLocked()
	}
}

// Assigned returns the assigned partitions, sorted.
func (c *Consumer) Assigned() []api.TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	tps := make([]api.TopicPartition, 0, len(c.order))
	for _, a := range c.order {
		tps = append(tps, a.tp)
	}
	slices.SortFunc(tps, func(x, y api.TopicPartition) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return tps
}

// Seek moves an assigned partition's position to at, effective for the
// next fetch: records a Poll in progress fetched from the old position are
// dropped, and the Records iterator returns none of them after Seek. It
// also clears an error that stopped the partition (ResetNone).
//
// Errors: an error matching api.ErrInvalidTopic for a name Kafka refuses;
// api.ErrUnknownTopicOrPartition for a negative partition; ErrNotAssigned;
// ErrInvalidOffset; ErrClosed.
func (c *Consumer) Seek(topic string, partition int32, at Offset) error {
	if err := checkPartition(topic, partition); err != nil {
		return err
	}
	if err := at.validate(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	a := c.parts[api.TopicPartition{Topic: topic, Partition: partition}]
	if a == nil {
		return fmt.Errorf("%w: %s-%d", ErrNotAssigned, topic, partition)
	}
	c.setLocked(a, at)
	c.wakeLocked()
	return nil
}

// Pause stops fetching the given partitions until Resume; their positions
// stay. A Poll waiting returns early (see Poll); records of them that it
// fetched are dropped (to be fetched again after Resume), and the Records iterator returns no more of
// them. Partitions that are not assigned are ignored.
func (c *Consumer) Pause(tps ...api.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	paused := false
	for _, tp := range tps {
		if a := c.parts[tp]; a != nil && !a.paused.Swap(true) {
			paused = true
		}
	}
	if paused && !c.closed.Load() {
		c.wakeLocked()
	}
}

// Resume undoes Pause. Partitions that are not assigned are ignored.
func (c *Consumer) Resume(tps ...api.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	resumed := false
	for _, tp := range tps {
		if a := c.parts[tp]; a != nil && a.paused.Swap(false) {
			resumed = true
		}
	}
	if resumed && !c.closed.Load() {
		c.wakeLocked()
	}
}

// Position returns the next offset a partition will return, and false
// when the partition is not assigned or its position is not resolved yet
// (Start, End or AtTime before the next Poll). After Poll it is the offset
// after the records Poll returned; inside the Records iterator, the offset
// after the record just yielded.
func (c *Consumer) Position(topic string, partition int32) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.parts[api.TopicPartition{Topic: topic, Partition: partition}]
	if a == nil {
		return 0, false
	}
	p := a.pos.Load()
	return p, p >= 0
}

// Close closes the consumer: a Poll in progress returns ErrClosed, and
// Close waits for it to return, so that no call to the Client is in
// flight afterwards; the Records iterator yields nothing more, not even
// the rest of what it fetched. The Client is not closed. Close is
// idempotent and returns nil; afterwards every method returns ErrClosed
// or does nothing, except Position and Assigned, which still tell where
// each partition stopped, for the application to save.
func (c *Consumer) Close() error {
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return nil
	}
	c.closed.Store(true)
	c.wake(ErrClosed)
	c.mu.Unlock()
	c.polls.Wait()
	return nil
}

func (c *Consumer) isClosed() bool { return c.closed.Load() }

// isNilPointer reports whether c is a nil pointer in a non-nil interface,
// a nil *runnel.Broker say, whose methods would panic on first use.
func isNilPointer(c Client) bool {
	v := reflect.ValueOf(c)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
