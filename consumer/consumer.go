package consumer

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

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/callstack"
	"github.com/runnel/runnel/internal/isnil"
	"github.com/runnel/runnel/internal/lockedlog"
	"github.com/runnel/runnel/internal/logrun"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// Client is what a Consumer needs of a broker; *runnel.Broker satisfies
// it.
//
// Every method must return when its ctx ends, with an error (Close cancels
// the call of a Poll, or AssignTopic, in progress, and waits for it to
// return). But a Fetch that has found records by then, fewer than its
// MinBytes, may return them without one, as *runnel.Broker's does (see
// [Consumer.Poll]).
//
// Fetch must return batch bytes that the consumer may keep and that never
// change afterwards, as api.FetchedPartition promises.
//
// The consumer reads the Client's errors so:
//
//   - A Client closed for good answers every call with an error matching
//     api.ErrBrokerClosed, as a closed *runnel.Broker does
//     (runnel.ErrClosed). The consumer takes that as the end (see
//     [Consumer.Records]).
//   - So a Client that may come back (a connection being re-established)
//     must return something else meanwhile, such as
//     api.ErrRequestTimedOut, which Poll retries without a word (see Poll),
//     as it does every error Kafka's table calls retriable.
//   - An error the table does not know is returned by Poll, and retried by
//     Records.
//   - The consumer takes api.ErrUnknownTopicOrPartition for a partition the
//     Client has answered for before as the partition gone (its topic
//     deleted: see Poll). So a Client must not answer it for a partition
//     that is only out of reach for a while.
type Client interface {
	// Partitions returns the number of partitions of a topic.
	Partitions(ctx context.Context, topic string) (int, error)
	// ListOffset resolves a timestamp (ms), api.Earliest or api.Latest to
	// an offset of a partition, with the ID of the topic whose partition
	// resolved it (zero if the Client knows none).
	//
	// The consumer names that ID in the Fetches that read from the offset.
	// So a topic deleted and created again in between is answered with
	// api.ErrUnknownTopicID, not read from the old topic's offset. An ID
	// that does not belong with the offset defeats that.
	ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (api.ListedOffset, error)
	// Fetch long-polls several partitions for records. It must not
	// modify req: the consumer reads the offsets it asked for there.
	Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error)
}

// Position sentinels of cursor.pos.
const (
	unresolved = -1 // waiting for ListOffset
	retired    = -2 // the cursor was replaced, or its partition unassigned: every compare-and-swap fails
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
//
// A Consumer is made by New. A zero Consumer (one not made by New) is
// closed: its methods return ErrClosed or do nothing, and Close returns
// nil.
type Consumer struct {
	client Client
	cfg    config // cfg.logger is never nil
	// lockedLog is the logger of the code that holds mu: it queues its
	// lines (in queue, under mu), and unlock hands them to cfg.logger's
	// handler once mu is released, so that a handler may call the
	// consumer's methods (Position, Pause, Close...) without a deadlock,
	// and a slow one holds no lock. Code that logs under mu unlocks with
	// unlock.
	lockedLog *slog.Logger
	queue     lockedlog.Queue

	mu    sync.Mutex
	parts map[api.TopicPartition]*assignment
	// closed is set by Close, under mu; read without mu where that is
	// enough (the Records iterator, isClosed).
	closed atomic.Bool
	// order holds the assignments, each at its idx; fetches rotate over
	// those they fetch (see request). Unassign moves the last one into the gap, so its order is the
	// assignment order only until then: nothing promises an order across
	// partitions, and Unassign takes the same time however many there are.
	order []*assignment
	// fetchFailing throttles the logs of a retriable error of whole
	// Fetches that keeps coming back (see backOff); under mu.
	fetchFailing logrun.Run
	rotate       int
	// wakeCtx is cancelled (cause errWoken) when a change should end a
	// Poll's wait early, and for good (cause ErrClosed) by Close.
	wakeCtx context.Context
	wake    context.CancelCauseFunc
	// closing ends, with Close, the calls to the Client that are not a
	// Poll's (AssignTopic's Partitions).
	closing     context.Context
	cancelClose context.CancelFunc
	polls       sync.WaitGroup // Polls and AssignTopic calls in progress; Close waits for them

	// hooks are set only by the package's tests (export_test.go), before
	// the consumer is used; nil otherwise.
	hooks *hooks
}

// hooks let the package's tests run code at chosen points of a Records
// loop or a Poll, to reproduce races deterministically and to see waits
// without timing them.
type hooks struct {
	// beforeAdvance runs with each record a Records loop is about to
	// yield: after the loop checked that it may go on, before the
	// position moves past the record.
	beforeAdvance func(*record.Record)
	// idle runs when a Poll with nothing to fetch is about to wait d
	// (0: not at all) for a change.
	idle func(d time.Duration)
}

// cursor holds an assigned partition's position from one change of it to
// the next. Assign, Seek, a reset, Pause and Close each retire the
// partition's cursor (its pos becomes retired, for good) and give the
// partition a new one, under Consumer.mu; Unassign retires it. Between
// changes, pos moves only forward: by a Poll, under Consumer.mu, and by
// the Records iterator, without the lock, by a compare-and-swap on the
// cursor of the fetch it yields from. That swap is where a record is
// taken: it fails once the cursor is retired, so no record of a fetch
// made before a change is yielded after the change has returned — even
// when the new position is the same offset as the old (a Seek to where
// the loop is), which a swap on one offset word could not tell from no
// change at all. A fetch carries the cursor it was made from: its answer
// is stale when the partition has another.
type cursor struct {
	pos atomic.Int64 // the next offset to return, unresolved, or retired
}

func newCursor(pos int64) *cursor {
	cur := &cursor{}
	cur.pos.Store(pos)
	return cur
}

// assignment is one assigned partition.
type assignment struct {
	tp api.TopicPartition

	// Guarded by Consumer.mu.
	//
	// idx is the assignment's index in Consumer.order.
	idx int
	// cur holds the position (see cursor), whose pos the Records
	// iterator advances without mu.
	cur *cursor
	// seq is bumped whenever the application sets the position (Assign,
	// Seek), not by a reset (which moves the position for the consumer's
	// own reasons: an error found before it is still the application's
	// to hear) nor when only its cursor is renewed (Pause, Close): it
	// tells unreported and a Records loop (left) whether an error's
	// partition was given another position since.
	seq     uint64
	paused  bool
	at      Offset    // what to resolve when pos is unresolved
	retryAt time.Time // left out of fetches until then, after an error
	stopped bool      // left out of fetches until Seek or Assign
	// held are the errors a Records loop ended before yielding that the
	// next Poll returns (see unreported), in the order found: one Poll
	// may find two (the look-up of a reset position and the fetch from
	// the position found may each find the topic replaced). Seek and
	// Assign drop them.
	held []Fetch
	// failing throttles the logs of a retriable error of this partition
	// that keeps coming back (see backOffLocked): the first after a good
	// answer at Info, the next ones at Debug, but for one at Warn every
	// 30 s while they go on (logrun.Every), so that a condition that does
	// not go away (a partition fenced on its broker, a partition number
	// that does not exist) shows in the log without a line at every
	// RetryBackoff.
	failing logrun.Run
	// reported throttles, as failing does, the logs of an error that the
	// consumer reports and retries after RetryBackoff (a corrupt batch),
	// first at Warn: one that comes back at the same offset with the same
	// text is the same run (see reportedKey); another error, or one at
	// another offset, is a first again. The application gets the error at
	// every retry all the same.
	reported logrun.Run
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
	// a topic deleted or created again since (and report it).
	topicID log.TopicID
	// hw is the high watermark last seen for the partition (see Lag):
	// that of the last fetch that answered for the position, with
	// records or an offset out of range, or the end a look-up of End
	// found. A move of the position keeps it, as the Java consumer's
	// seek does, but one past it, which it then tells nothing of (the
	// high watermark may have passed it since): -1 then, and before the
	// partition's first answer, once its topic is seen gone or replaced
	// (the high watermark was another topic's: a fetch answers that the
	// partition is not there, or a look-up finds it in a topic other than
	// hwTopic), and after an offset out of range whose answer gives none.
	hw int64
	// hwTopic is the ID of the topic hw was seen in: the one the answer
	// that gave it named (zero from a Client that gives none). A move of
	// the position forgets topicID, not this: a look-up in another topic
	// then forgets hw (see resolvedLocked).
	hwTopic log.TopicID
}

// New returns a Consumer reading through c, with no partition assigned.
//
// Errors: ErrInvalidOption for a nil c (a nil *runnel.Broker too) or an
// option out of range.
func New(c Client, opts ...Opt) (*Consumer, error) {
	if isnil.Value(c) {
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
	cs.lockedLog = cs.queue.Init(&cs.mu, cfg.logger)
	cs.wakeCtx, cs.wake = context.WithCancelCause(context.Background())
	cs.closing, cs.cancelClose = context.WithCancel(context.Background())
	return cs, nil
}

// unlock releases mu, then hands the lines logged under it (lockedLog)
// to their handler, in the order logged (see lockedlog.Queue.Unlock).
func (c *Consumer) unlock() { c.queue.Unlock() }

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

// checkCall refuses, before taking the lock, a call that names a
// partition and an offset (Assign, AssignTopic, Seek) on a closed
// Consumer (ErrClosed), then one checkPartition or at.validate refuses,
// in that order.
func (c *Consumer) checkCall(topic string, partition int32, at Offset) error {
	if c.isClosed() {
		return ErrClosed
	}
	if err := checkPartition(topic, partition); err != nil {
		return err
	}
	return at.validate()
}

// Assign adds a partition to those Poll reads, starting at at. A partition
// already assigned gets at as its new position (and keeps being paused if
// it was), as a Seek: kgo's AddConsumePartitions, instead, leaves a
// partition it already consumes where it is, so an Assign made to be sure
// that a partition is read may move it back.
//
// Offsets other than At are resolved on the next Poll, with the Client's
// ListOffset; the errors found then that Poll reports (see [Consumer.Poll])
// come in that partition's Fetch.Err.
//
// Errors:
//
//   - an error matching api.ErrInvalidTopic for a name Kafka refuses (see
//     api.ValidateTopicName);
//   - api.ErrUnknownTopicOrPartition for a negative partition;
//   - [ErrInvalidOffset];
//   - [ErrClosed].
//
// A topic the broker does not have, or a partition number it does not
// have, is not an error here, nor from Poll. Poll retries it every
// [RetryBackoff] without a word (logging it) until the partition exists,
// as Kafka's consumers do: a misspelt name reads nothing, forever.
// [Consumer.AssignTopic] asks the Client for the topic's partitions first,
// and fails at once for an unknown topic.
func (c *Consumer) Assign(topic string, partition int32, at Offset) error {
	if err := c.checkCall(topic, partition, at); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
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
		a = &assignment{tp: tp, idx: len(c.order), hw: -1}
		c.parts[tp] = a
		c.order = append(c.order, a)
	}
	c.setLocked(a, at)
}

// setLocked gives a a new position and clears its error state. The
// caller wakes a waiting Poll (wakeLocked).
func (c *Consumer) setLocked(a *assignment, at Offset) {
	pos := int64(unresolved)
	if at.kind == kindExact {
		pos = at.v
	}
	a.moveLocked(pos)
	a.seq++
	a.at = at
	a.held = nil
	a.stopped = false
	a.seen = false
	a.topicID = log.TopicID{}
	if pos > a.hw {
		a.hw = -1 // see hw (an unresolved pos is checked once resolved)
	}
	a.retryAt = time.Time{}
}

// moveLocked sets a's position to pos (an offset or unresolved), other
// than by progress: it retires a's cursor for a new one. (setLocked, the
// application's move, also bumps seq.)
func (a *assignment) moveLocked(pos int64) {
	if a.cur != nil {
		a.cur.pos.Store(retired)
	}
	a.cur = newCursor(pos)
}

// renewLocked retires a's cursor for a new one at the same position, so
// that a Records loop yields nothing more of the fetch it has (Pause,
// Close). The position is taken from the old cursor in the swap that
// retires it: a record the loop took before is counted, none after.
func (a *assignment) renewLocked() {
	a.cur = newCursor(a.cur.pos.Swap(retired))
}

// wakeLocked ends the wait of a Poll in progress, so that it sees a
// change at once.
func (c *Consumer) wakeLocked() {
	c.wake(errWoken)
	c.wakeCtx, c.wake = context.WithCancelCause(context.Background())
}

// assignTopicTimeout bounds AssignTopic's retries of a Client's
// retriable errors: Kafka's default.api.timeout.ms.
const assignTopicTimeout = 60 * time.Second

// partitions asks the Client for topic's partition count, again after
// RetryBackoff while it answers an error Kafka's table calls retriable
// (but an unknown topic or partition, which is an answer, and a closed
// Client's), as the Java consumer's partitionsFor retries, for up to
// assignTopicTimeout; then, or when ctx ends, the last error (ctx's).
func (c *Consumer) partitions(ctx context.Context, topic string) (int, error) {
	deadline := time.Now().Add(assignTopicTimeout)
	for {
		n, err := c.client.Partitions(ctx, topic)
		if err == nil || !transient(err) || clientClosed(err) || errors.Is(err, api.ErrUnknownTopicOrPartition) ||
			!time.Now().Before(deadline) {
			return n, err
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		c.cfg.logger.Debug("retrying the partition count", "topic", topic, "backoff", c.cfg.backoff, "err", err)
		if !c.sleep(ctx, min(c.cfg.backoff, time.Until(deadline)), nil) {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, ErrClosed
		}
	}
}

// AssignTopic assigns every partition of topic (as many as the Client's
// Partitions reports now), each starting at at; see [Consumer.Assign].
//
// Partitions added to the topic later (CreatePartitions) are not assigned,
// and nothing tells the consumer of them. To read them, Assign them (their
// number is the Client's Partitions); calling AssignTopic again would also
// move the partitions already assigned back to at. It is the Java
// consumer's assign() of every partition, not kgo's ConsumeTopics, which
// picks up new partitions at its next metadata refresh. Assigned with
// Start, a new partition loses nothing produced to it before the Assign.
//
// A Close during the call ends the Client's call, and waits for it, as it
// does a Poll's.
//
// An error of the Client's Partitions that Kafka's table calls retriable
// (not the leader, a request timed out) is retried after [RetryBackoff],
// for up to 60 s (Kafka's default.api.timeout.ms), as the Java
// consumer's partitionsFor retries it.
//
// Errors, none of them assigning anything:
//
//   - those of Assign, checked before the Client is asked;
//   - those of the Client's Partitions: an error matching
//     api.ErrUnknownTopicOrPartition for an unknown topic,
//     api.ErrBrokerClosed for a closed broker, a retriable one that went on
//     for 60 s;
//   - api.ErrUnknownTopicOrPartition also for a count below 1 (no topic has
//     no partition; the producer takes such a count so too);
//   - api.ErrInvalidRequest for a count above math.MaxInt32, which no Kafka
//     topic has;
//   - ctx's error;
//   - [ErrClosed], also when Close came during the call.
func (c *Consumer) AssignTopic(ctx context.Context, topic string, at Offset) error {
	if err := c.checkCall(topic, 0, at); err != nil {
		return err
	}
	c.mu.Lock()
	if c.isClosed() {
		c.mu.Unlock()
		return ErrClosed
	}
	c.polls.Add(1) // under mu, before Close's Wait
	c.mu.Unlock()
	defer c.polls.Done()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(c.closing, cancel)
	defer stop()
	n, err := c.partitions(cctx, topic)
	if err != nil {
		if c.isClosed() {
			return ErrClosed
		}
		return err
	}
	if n < 1 {
		// As the producer takes it: a topic has at least one partition,
		// so a Client that counts none does not know the topic.
		return fmt.Errorf("%w: %s has %d partitions", api.ErrUnknownTopicOrPartition, topic, n)
	}
	if n > math.MaxInt32 {
		// Kafka's partition ids are int32s: no topic has more. Each would
		// be assigned, the ids wrapping, until memory ran out.
		return fmt.Errorf("%w: the Client says %s has %d partitions, more than an int32 numbers", api.ErrInvalidRequest, topic, n)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return ErrClosed
	}
	for p := range n {
		c.assignLocked(api.TopicPartition{Topic: topic, Partition: int32(p)}, at)
	}
	c.wakeLocked()
	return nil
}

// Unassign stops reading a partition. A Poll waiting returns early (see
// Poll); records of the partition that it fetched are dropped, but those
// it had moved the position past before the call (see Seek); the Records
// iterator returns no more of it. Unassigning a partition that is not
// assigned does nothing, and so does Unassign after Close: the
// partition's position stays for Position to tell (see Close).
func (c *Consumer) Unassign(topic string, partition int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
		return
	}
	tp := api.TopicPartition{Topic: topic, Partition: partition}
	a := c.parts[tp]
	if a == nil {
		return
	}
	delete(c.parts, tp)
	last := c.order[len(c.order)-1]
	c.order[a.idx], last.idx = last, a.idx
	c.order[len(c.order)-1] = nil
	c.order = c.order[:len(c.order)-1]
	a.cur.pos.Store(retired)
	c.wakeLocked()
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
// next fetch. It also clears an error that stopped the partition
// ([ResetNone]).
//
// Records a Poll in progress fetched from the old position are dropped,
// but those it had moved the position past before the call (Position was
// past them), as a Records loop's record in hand: a Poll that has its
// answer, and is returning it or calling the Logger's handler, returns
// them after Seek has returned. Once Seek has returned the Records
// iterator yields none of the records it fetched before, even when at is
// the offset it was at (see [Consumer.Records]).
//
// Errors:
//
//   - an error matching api.ErrInvalidTopic for a name Kafka refuses;
//   - api.ErrUnknownTopicOrPartition for a negative partition;
//   - [ErrNotAssigned];
//   - [ErrInvalidOffset];
//   - [ErrClosed].
func (c *Consumer) Seek(topic string, partition int32, at Offset) error {
	if err := c.checkCall(topic, partition, at); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
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
// stay. Partitions that are not assigned are ignored.
//
// A Poll waiting returns early (see [Consumer.Poll]). Records of them that
// it fetched are dropped (to be fetched again after Resume), but those it
// had moved the positions past before the call (see Seek), and the
// Records iterator returns no more of them.
//
// A paused partition whose position is still to be looked up (Start,
// End, AtTime, or a reset) is looked up by the next Poll, paused or not,
// as Kafka's consumer does: End is the end at that Poll, and the records
// produced during the pause are read after Resume. (A look-up in flight
// when Pause ends a Poll is made again by the next one.)
func (c *Consumer) Pause(tps ...api.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
		return // see Close
	}
	paused := false
	for _, tp := range tps {
		if a := c.parts[tp]; a != nil && !a.paused {
			a.paused = true
			a.renewLocked()
			paused = true
		}
	}
	if paused {
		c.wakeLocked()
	}
}

// Resume undoes Pause. Partitions that are not assigned are ignored.
func (c *Consumer) Resume(tps ...api.TopicPartition) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isClosed() {
		return // see Close
	}
	resumed := false
	for _, tp := range tps {
		if a := c.parts[tp]; a != nil && a.paused {
			a.paused = false
			resumed = true
		}
	}
	if resumed {
		c.wakeLocked()
	}
}

// Position returns the next offset a partition will return, and false
// when the partition is not assigned or its position is not resolved yet
// (Start, End or AtTime before the next Poll). After Poll it is the offset
// after the records Poll returned; inside the Records iterator, the offset
// after the record just yielded (see Records).
func (c *Consumer) Position(topic string, partition int32) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.parts[api.TopicPartition{Topic: topic, Partition: partition}]
	if a == nil {
		return 0, false
	}
	p := a.cur.pos.Load()
	return p, p >= 0
}

// Lag returns how many offsets a partition's position is behind its high
// watermark as last seen: by the last fetch that answered for the
// partition (Kafka's KafkaConsumer.currentLag, KIP-695), or by the
// look-up of End that gave the position.
//
// Lag returns false when the partition is not assigned, its position is
// not resolved (Start, End, AtTime or a reset, before the next Poll), or
// its high watermark is not known: before a fetch has answered for it
// since it was assigned; once its topic is seen deleted (a fetch answers
// that the partition is not there) or created again (a look-up finds the
// position in a topic other than the one the high watermark was seen
// in); and after an offset out of range answered without a high
// watermark (Kafka's broker gives none there; *runnel.Broker does).
//
// Seek, an Assign of a partition already assigned, and a reset keep the
// high watermark, as the Java consumer's seek does: Lag answers at once
// for the new position, without waiting for a fetch. (kgo's direct
// consumer has no lag to ask; its fetches carry the high watermark.) A
// position moved past that high watermark, by At or a look-up that found
// records appended since, is the exception: Lag returns false until a
// fetch answers for it, as the high watermark may have passed it since.
// An offset out of range takes the high watermark that fetch answered
// with, whether the position is reset or left (ResetNone): the log's own
// then, lower than the one seen before if the log was cut under the
// position.
//
// It is 0 once the records fetched are all taken (inside the Records
// iterator, once the record in hand is the last below that high
// watermark), so a loop that reads what is there and stops can stop at 0.
//
// It is not the lag now: records appended since that fetch are not
// counted, and the high watermark moves only when the consumer fetches
// the partition again. A Records loop fetches again once it has yielded
// all that its last Poll returned, up to [FetchMaxPartitionBytes] of the
// partition (1 MiB by default): while a slow loop body works through
// them, Lag falls record by record and does not see the appends. Java's
// currentLag is the same: its high watermark comes with a fetch, taken
// by the poll that reaches it. The lag now is the broker's high
// watermark (DescribeTopic, or the Client's ListOffset of api.Latest)
// less Position, read in that order: Position first.
//
// It is negative when the position is past that high watermark, as
// Kafka's is:
//
//   - the log lost records past the position (see the package doc);
//   - or At put it there, and a fetch then answered with the high
//     watermark below it: at an offset appended but not yet below the
//     high watermark, such as one a producer with acks=1 was given before
//     the fsync of a topic that fsyncs before acknowledging.
//
// A consumer that takes positions from the Start, the End, a time or its
// own reads is never past it; neither is the high watermark ever lower at
// a later fetch.
func (c *Consumer) Lag(topic string, partition int32) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := c.parts[api.TopicPartition{Topic: topic, Partition: partition}]
	if a == nil || a.hw < 0 {
		return 0, false
	}
	p := a.cur.pos.Load()
	return a.hw - p, p >= 0
}

// Close closes the consumer: a Poll or AssignTopic in progress returns
// [ErrClosed], and Close waits for it to return, so that no call to the
// Client is in flight afterwards. The Records iterator yields nothing
// more, not even the rest of what it fetched. The Client is not closed.
//
// Close is idempotent and returns nil; a second call, too, returns once
// no call to the Client is in flight. Afterwards every method returns
// ErrClosed or does nothing (Unassign, Pause and Resume too), except:
//
//   - Position and Assigned, which still tell where each partition
//     stopped, for the application to save;
//   - Lag, which still tells how far behind it was.
//
// A closed consumer keeps each assignment's state for them, as much as it
// held open, until the application drops it.
//
// Close called from a Client's method that a Poll or AssignTopic called
// closes the consumer all the same, but returns without waiting for the
// calls in flight, one of which is its caller's. That Poll or AssignTopic
// returns ErrClosed once the method returns. A later Close from elsewhere
// waits for them. The Poll or AssignTopic may be this consumer's or
// another's: Close cannot tell them apart. (A runneltest.Fault's Match is
// such a method, though it runs on a goroutine of its own that the method
// waits for.)
//
// So does a Close called from the Logger's handler (see [Logger]): it
// closes the consumer and returns without waiting. The handler runs on the
// goroutine of the Poll or AssignTopic that logs, and that call returns
// ErrClosed too, or, when the Poll had its answer by then, that answer
// (the positions moved past what it holds).
func (c *Consumer) Close() error {
	if c.client == nil {
		return nil // a zero Consumer: nothing to stop
	}
	c.mu.Lock()
	if !c.closed.Load() {
		c.closed.Store(true)
		for _, a := range c.order {
			a.renewLocked() // a Records loop yields nothing more
		}
		c.wake(ErrClosed)
		c.cancelClose()
	}
	c.mu.Unlock()
	if inClientCall() {
		// One of the calls to wait for is this one's caller.
		return nil
	}
	c.polls.Wait() // no call is added once closed is set (see poll)
	return nil
}

// clientCallers are the consumer's functions that call the Client's
// methods, with a Poll's or AssignTopic's place in polls.
// A runneltest.Fault's Match runs for a Client's method on a goroutine
// of its own, which the method waits for: as if on the method's
// goroutine.
var clientCallers = [...]string{
	"github.com/runnel/runnel/consumer.(*Consumer).poll",
	"github.com/runnel/runnel/consumer.(*Consumer).AssignTopic",
	callstack.FaultsMatch,
}

// inClientCall reports whether the caller runs inside a Client's method
// that a consumer's Poll (or Records) or AssignTopic called — of this
// consumer or another: the stack does not tell which. It walks the
// stack, a few microseconds: it is for Close only.
func inClientCall() bool {
	return callstack.Within(clientCallers[:]...)
}

// isClosed reports whether c is closed, or is a zero Consumer, which is
// never open.
func (c *Consumer) isClosed() bool { return c.closed.Load() || c.client == nil }
