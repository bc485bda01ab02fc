package runnel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// partition returns a topic's partition, creating the topic first when
// create is set and the broker auto-creates topics.
func (b *Broker) partition(ctx context.Context, topic string, id int32, create bool) (*log.Partition, error) {
	_, p, err := b.topicPartition(ctx, topic, id, create)
	return p, err
}

// topicPartition is partition, and returns the partition's topic too.
func (b *Broker) topicPartition(ctx context.Context, topic string, id int32, create bool) (*log.Topic, *log.Partition, error) {
	t, err := b.topic(topic)
	if create && b.cfg.AutoCreateTopics && err != nil && !isClosedOrInvalid(err) {
		if t, err = b.autoCreate(ctx, topic); err != nil {
			return nil, nil, err
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if id < 0 || int(id) >= len(t.Partitions) {
		return nil, nil, fmt.Errorf("%w: %s has no partition %d", ErrUnknownTopic, topic, id)
	}
	return t, t.Partitions[id], nil
}

// partitionGone tells why p's log was closed under a call: the broker
// closed (ErrClosed); p's topic was deleted (ErrUnknownTopic, as the next
// call would say); or, p still being its topic's, a config change closed
// the log and could not open it again (log.ErrLogFenced, as the next call
// would say).
func (b *Broker) partitionGone(err error, p *log.Partition) error {
	if !errors.Is(err, log.ErrClosed) {
		return err
	}
	if b.closed.Load() {
		return ErrClosed
	}
	if b.holds(p) {
		return fmt.Errorf("%w: %s-%d: a config change closed its log and could not open it again", log.ErrLogFenced, p.Topic(), p.ID())
	}
	return fmt.Errorf("%w: %s-%d was deleted", ErrUnknownTopic, p.Topic(), p.ID())
}

// holds reports whether p is a partition of one of the broker's topics.
func (b *Broker) holds(p *log.Partition) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	t, ok := b.topics[p.Topic()]
	return ok && int(p.ID()) < len(t.Partitions) && t.Partitions[p.ID()] == p
}

func isClosedOrInvalid(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, ErrInvalidTopic)
}

func (b *Broker) autoCreate(ctx context.Context, topic string) (*log.Topic, error) {
	if err := b.lockAdmin(ctx); err != nil {
		return nil, err
	}
	_, ok := b.topics[topic] // under admin: no writer
	if !ok {
		if err := b.createAdmin(ctx, topic, log.TopicConfig{Partitions: b.cfg.DefaultPartitions}); err != nil {
			b.unlockAdmin()
			return nil, autoCreateError(topic, err)
		}
	}
	b.unlockAdmin()
	if !ok {
		// Logged once the admin token is given back: the Logger's
		// handler may call the broker's admin methods (see Config.Logger).
		b.cfg.Logger.Info("auto-created topic", "topic", topic, "partitions", b.cfg.DefaultPartitions)
	}
	return b.topic(topic)
}

// autoCreateError is the error of an auto-creation of topic that failed
// with err: err, or, for a file system's error (a full disk, an I/O
// error), err wrapped in ErrStorage (KAFKA_STORAGE_ERROR, retriable), as
// InitProducerID's and a partition's failed append are. A producer then
// asks again until its delivery timeout, as Kafka's waits for the
// metadata of a topic whose partitions a failed log directory holds,
// and its records go once room is freed; the file system's error alone
// is retriable by no error table, and failed them at once. Errors that
// another try would meet again are left as they are: those with a Kafka
// code (ErrInvalidTopic, ErrClosed, ...), ctx's, log.ErrNotLogDir (a
// directory of the partition's name holds foreign files) and
// vfs.ErrNameTooLong.
func autoCreateError(topic string, err error) error {
	if api.Code(err) != -1 || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, log.ErrNotLogDir) || errors.Is(err, vfs.ErrNameTooLong) {
		return err
	}
	return fmt.Errorf("%w: auto-creating topic %s: %w", ErrStorage, topic, err)
}

// Partitions returns the number of partitions of topic, creating the
// topic if the broker auto-creates topics. It serves producer.Client and
// consumer.Client.
//
// Errors: ErrUnknownTopic; ErrInvalidTopic; ErrClosed; and when it creates
// the topic (Config.AutoCreateTopics), CreateTopic's: ctx's error,
// ErrInvalidTopic for a name CreateTopic refuses, log.ErrNotLogDir, and
// file system errors wrapped in ErrStorage (retriable: a full disk, say,
// where a producer's records go once room is freed), but for
// vfs.ErrNameTooLong, returned as it is.
func (b *Broker) Partitions(ctx context.Context, topic string) (int, error) {
	t, err := b.topic(topic)
	if err != nil && b.cfg.AutoCreateTopics && !isClosedOrInvalid(err) {
		t, err = b.autoCreate(ctx, topic)
	}
	if err != nil {
		return 0, err
	}
	return len(t.Partitions), nil
}

// InitProducerID assigns a new idempotent producer id with epoch 0. The
// id is unique for the broker's directory, across restarts. It serves
// producer.Client.
//
// Errors:
//
//   - [ErrClosed];
//   - ctx's error: it waits for another call's write of the counter, not
//     for admin calls;
//   - [ErrProducerIDsExhausted];
//   - [ErrStorage] (KAFKA_STORAGE_ERROR, retriable: a producer asks again
//     until its delivery timeout), wrapping the file system's error from
//     writing the id counter (syscall.ENOSPC on a full disk).
//
// After ErrStorage, no id is handed out, and the next call writes the
// same counter value again. The counter is left as it was or, when the
// directory's fsync failed after the new value was put in place, already
// holds that value (durable or not). So no id is handed out twice, even
// across a crash.
func (b *Broker) InitProducerID(ctx context.Context) (int64, int16, error) {
	if b.isClosed() {
		return 0, 0, ErrClosed
	}
	if err := b.lockPIDs(ctx); err != nil { // Close may have released the directory meanwhile
		return 0, 0, err
	}
	defer func() { <-b.pids }()
	id := b.nextPID
	if id == math.MaxInt64 {
		// The counter holds the next id: handing this one out would
		// write one past it, which does not fit.
		return 0, 0, fmt.Errorf("%w: the counter in %s is at %d", ErrProducerIDsExhausted, b.path(producerIDs), id)
	}
	if _, err := b.writeFile(b.path(producerIDs), encodeCounter(id+1)); err != nil {
		// A retriable error, as Kafka's storage errors are (its
		// producer retries an InitProducerId that fails with one): room
		// may be freed meanwhile (see docs/details.md, "A full disk").
		// It was the file system's error alone, which no error table
		// calls retriable, so an idempotent producer's first records failed
		// at once where those to a partition a full disk fenced are
		// retried. The id is not handed out: the next call writes the
		// same counter again.
		return 0, 0, fmt.Errorf("%w: writing the producer id counter %s: %w", ErrStorage, b.path(producerIDs), err)
	}
	b.nextPID++
	return id, 0, nil
}

// lockPIDs takes the token of the producer-id counter (Broker.pids),
// unless the broker is closed, Close begins, or ctx ends first.
func (b *Broker) lockPIDs(ctx context.Context) error { return b.takeToken(ctx, b.pids) }

func (b *Broker) path(name string) string { return filepath.Join(b.root, name) }

// Produce appends req.Batches to a partition (see log.Log.Append, which
// assigns offsets in place and applies idempotence). It serves
// producer.Client.
//
// On a single node every acks level waits for the append, and under the
// default fsync policy for its fsync: acks 0 and 1 ask for no more, and
// get no less.
//
// A ctx that ends after the append (while its fsync is awaited) gives ctx's
// error with the response filled in. The records are in the log, and the
// broker fsyncs them itself, so that they become readable; a retry of an
// idempotent producer's batch is answered as a duplicate.
//
// Errors:
//
//   - api.ErrInvalidRequest (a nil req);
//   - api.ErrInvalidRequiredAcks;
//   - [ErrUnknownTopic]; [ErrInvalidTopic];
//   - log.ErrRecordTooLarge;
//   - log.ErrInvalidRecord (Kafka's INVALID_RECORD, not retriable). Among
//     them: log.ErrInvalidTimestamp; a base offset other than 0 (whatever
//     the batch's size and CRC, as Kafka checks it first); a header whose
//     record count is not its offset range; and, matching record.ErrCorrupt
//     too, a record that does not decode in a batch whose header and CRC
//     are sound, a codec that is unknown and compressed records that do not
//     decompress.
//   - record.ErrCorrupt: a batch whose size, magic or CRC is bad (Kafka's
//     CORRUPT_MESSAGE); also whole batches followed by bytes that make no
//     whole batch, where Kafka appends the whole ones and drops the rest: a
//     request is taken or refused whole.
//   - log.ErrOutOfOrderSequence; log.ErrProducerFenced;
//   - log.ErrOffsetOutOfRange when the batches would take the partition's
//     log end offset past log.MaxLogEndOffset;
//   - log.ErrLogFenced; log.ErrRollFailed;
//   - [ErrClosed]; ctx's error;
//   - when it creates the topic ([Config].AutoCreateTopics), those of
//     [Broker.Partitions].
func (b *Broker) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	resp, d, p, err := b.produce(ctx, req)
	if err == nil {
		err = b.wait(ctx, d, p)
	}
	return resp, err
}

// wait waits for an append's fsync. If ctx ends first, the broker's own
// goroutine fsyncs it: the fsync is made by whoever waits for it (group
// commit), and an append nobody waits for would stay above the high
// watermark, unreadable, until a later append's fsync, which may never
// come.
func (b *Broker) wait(ctx context.Context, d log.Durability, p *log.Partition) error {
	err := d.Wait(ctx)
	if err == nil {
		return nil
	}
	if ctx.Err() != nil && d.Pending() {
		b.syncLater(d, p)
	}
	return b.partitionGone(err, p)
}

// syncLater fsyncs an append in a goroutine of the broker's, unless the
// broker is closing (Close fsyncs every log). One goroutine a partition
// at most: while it waits, the appends handed to it are queued
// (laterSync), each dropped that a later one, or the one waited for,
// covers (log.Durability.Covers: the same log's fsync to a later
// offset), and it waits for those left in turn. A goroutine an append,
// as before 2026-12-06, piled up while a disk hung in an fsync: 2,000
// produce calls whose ctx ended left 2,000 goroutines waiting for it.
// wg counts the goroutine while it waits for an fsync, not while it
// hands the log's lines on: the fsync may run on it (always on the
// memory FS, unless another caller's is under way), which hands on, as
// it ends, the lines logged during it, its own and those of concurrent
// calls (a roll) left to it, and a handler may call Close, which waits
// for wg, on any line. So the log's lines are held
// (Durability.HoldLines) until the goroutine has counted itself out of
// wg and into handing (which Close waits for last, but for a handler's
// Close on this goroutine: see Broker.waitLines); it then hands them
// on, touching the log only to do so, and ends, or counts itself in wg
// again (unless Close has begun) for the next append queued.
func (b *Broker) syncLater(d log.Durability, p *log.Partition) {
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	if b.closed.Load() {
		return
	}
	if s := b.later[p]; s != nil {
		s.add(d)
		return
	}
	if b.later == nil {
		b.later = map[*log.Partition]*laterSync{}
	}
	s := &laterSync{cur: d}
	b.later[p] = s
	b.wg.Add(1)
	go func() {
		for {
			release := d.HoldLines()
			// Its error is the append's, which its producer was told
			// about (ctx's error): a failed fsync fences the log, and
			// the next produce reports it. (A truncation that removed
			// the append would leave those dropped as covered by it
			// and below the cut to a later fsync; but the broker
			// truncates no log: log.Log.TruncateTo is for replication.)
			_ = d.Wait(b.ctx)
			b.startHanding()
			release()
			var ok bool
			if d, ok = b.nextLater(p, s); !ok {
				b.handing.Done()
				return
			}
			b.handing.Done() // counted in wg again by nextLater
		}
	}()
}

// laterSync is the state of a partition's syncLater goroutine, guarded
// by bgMu: the append it waits for, and those queued after it that
// neither it nor a later one covers (appends to another log of the
// partition's only: a few at most).
type laterSync struct {
	cur    log.Durability
	queued []log.Durability
}

// add queues d unless the append waited for, or one queued, covers it,
// dropping those it covers.
func (s *laterSync) add(d log.Durability) {
	if s.cur.Covers(d) || slices.ContainsFunc(s.queued, func(q log.Durability) bool { return q.Covers(d) }) {
		return
	}
	s.queued = append(slices.DeleteFunc(s.queued, d.Covers), d)
}

// nextLater returns the next append queued for p's syncLater goroutine
// (s), once it has waited for its append and handed the lines on, and
// counts the goroutine in wg again: false, and p's state dropped, when
// none is left, or when Close has begun (Close fsyncs every log).
func (b *Broker) nextLater(p *log.Partition, s *laterSync) (log.Durability, bool) {
	b.bgMu.Lock()
	defer b.bgMu.Unlock()
	if len(s.queued) == 0 || b.closed.Load() {
		delete(b.later, p)
		return log.Durability{}, false
	}
	s.cur = s.queued[0]
	s.queued = slices.Delete(s.queued, 0, 1)
	b.wg.Add(1)
	return s.cur, true
}

// ProduceAsync is Produce in two steps, for a producer that keeps several
// requests of a partition in flight. It serves producer.AsyncClient.
//
// It returns once the batches are appended, with the response and the
// acknowledgement still to come (nil when there is none: the topic does not
// fsync before acknowledging). Its Wait returns what Produce would have
// returned after the append:
//
//   - nil, also when the broker closed meanwhile (Close fsyncs the logs
//     first);
//   - log.ErrLogFenced;
//   - [ErrUnknownTopic]: the topic was deleted meanwhile, and the records
//     with it;
//   - [ErrClosed]: the broker closed with the log fenced or its closing
//     fsync failed;
//   - or ctx's error.
//
// Errors: those of Produce, the ones of the fsync excepted.
//
// Call Wait on every acknowledgement. Under the default fsync policy the
// fsync is run by those who wait for it (group commit), and records whose
// acknowledgement nobody waits for stay above the high watermark, unread
// by consumers, until a later append's fsync or Close covers them. (A Wait
// whose ctx ends hands the fsync to the broker.)
func (b *Broker) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	resp, d, p, err := b.produce(ctx, req)
	if err != nil || !d.Pending() {
		return resp, nil, err
	}
	return resp, &produceAck{b: b, d: d, p: p}, nil
}

// produce is the append of Produce and ProduceAsync, and the partition
// appended to.
func (b *Broker) produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, log.Durability, *log.Partition, error) {
	resp := api.ProduceResponse{BaseOffset: -1, LogAppendTime: -1, LogStartOffset: -1}
	if b.isClosed() {
		return resp, log.Durability{}, nil, ErrClosed
	}
	if req == nil {
		return resp, log.Durability{}, nil, fmt.Errorf("%w: nil produce request", api.ErrInvalidRequest)
	}
	if !req.Acks.Valid() {
		return resp, log.Durability{}, nil, fmt.Errorf("%w: %d", api.ErrInvalidRequiredAcks, req.Acks)
	}
	p, err := b.partition(ctx, req.Topic, req.Partition, true)
	if err != nil {
		return resp, log.Durability{}, nil, err
	}
	res, d, err := p.AppendAsync(ctx, req.Batches, log.AppendOptions{})
	if err != nil {
		return resp, d, p, b.partitionGone(err, p)
	}
	resp.BaseOffset, resp.LogAppendTime, resp.Duplicate = res.FirstOffset, res.LogAppendTime, res.Duplicate
	resp.LogStartOffset = p.LogStartOffset()
	return resp, d, p, nil
}

// produceAck is ProduceAsync's acknowledgement: the append's fsync.
type produceAck struct {
	b *Broker
	d log.Durability
	p *log.Partition
}

func (a *produceAck) Wait(ctx context.Context) error { return a.b.wait(ctx, a.d, a.p) }

// ListOffset returns the offset for timestamp (ms) in a partition. It
// serves consumer.Client.
//
//   - For a timestamp, it is the first offset whose record is at least that
//     recent, or the high watermark when none is (Kafka answers offset -1
//     then; both answer timestamp -1).
//   - api.Latest gives the high watermark.
//   - api.Earliest (and api.EarliestLocal) give the log start offset.
//   - api.MaxTimestamp gives the offset of the first record with the
//     largest timestamp among those a consumer can read, from the log
//     start offset to the high watermark (the high watermark when there is
//     none).
//
// For MaxTimestamp, a record with a larger timestamp above the high
// watermark (appended, not yet fsynced) is not the answer until it is
// readable. Kafka's broker looks for the largest timestamp in the whole log
// and answers no offset (-1) when that record is above the high watermark,
// and that record's offset when DeleteRecords passed it but not its
// segment (below the log start offset, where a fetch is out of range).
// Ours answers the largest one can read.
//
// As Kafka's, the answer carries the timestamp of the record at the
// offset for a look-up by timestamp or MaxTimestamp (read from the log
// after the search: one small read), and -1 for Latest and Earliest or
// when no record matched (see api.ListedOffset).
//
// The answer also carries the ID of the topic whose partition gave the
// offset (Kafka's ListOffsets has none: see api.ListedOffset), read from
// the same topic as the offset. So a Fetch naming it gets
// [ErrUnknownTopicID] once the topic is deleted (and maybe created again),
// rather than the new topic's records from the old topic's offset.
//
// A negative timestamp other than those (and -5, taken as a timestamp: see
// api's special timestamps) is refused with api.ErrUnsupportedVersion
// (UNSUPPORTED_VERSION, 35), before the topic is looked up, as Kafka's
// broker refuses a special timestamp it does not know
// (ReplicaManager.isListOffsetsTimestampUnsupported). A closed broker
// answers [ErrClosed] first.
//
// Errors:
//
//   - api.ErrUnsupportedVersion;
//   - [ErrUnknownTopic], also for a topic deleted during the call;
//   - [ErrInvalidTopic];
//   - [ErrClosed]; ctx's error (the largest timestamp may be found by
//     reading records, which Close ends too, with ErrClosed);
//   - log.ErrLogFenced for a partition whose reopen after a config change
//     failed (see [Broker.AlterTopicConfig]);
//   - record.ErrCorrupt from the records read;
//   - log.ErrOffsetOutOfRange when the log kept moving under the search
//     (see log.Log.OffsetForTime).
func (b *Broker) ListOffset(ctx context.Context, topic string, partition int32, timestamp int64) (api.ListedOffset, error) {
	if timestamp < latestTiered && !b.isClosed() {
		return api.ListedOffset{}, fmt.Errorf("%w: ListOffsets timestamp %d is negative and none of the special ones (-1 to -5)", api.ErrUnsupportedVersion, timestamp)
	}
	t, p, err := b.topicPartition(ctx, topic, partition, false)
	if err != nil {
		return api.ListedOffset{}, err
	}
	if testHookListOffsetFound != nil {
		testHookListOffsetFound()
	}
	if timestamp == api.MaxTimestamp {
		// The search may read records, holding the partition open: Close
		// ends it, as it ends a Fetch's wait.
		var stop context.CancelFunc
		ctx, stop = b.untilClose(ctx)
		defer stop()
	}
	lo, err := listOffset(ctx, p, timestamp)
	if err != nil {
		if b.ctx.Err() != nil && ctx.Err() != nil {
			return api.ListedOffset{}, ErrClosed
		}
		return api.ListedOffset{}, b.partitionGone(err, p)
	}
	lo.TopicID = t.ID
	return lo, nil
}

// testHookListOffsetFound, when set (by tests), runs in ListOffset once
// it has looked the partition up, before the look-up in it.
var testHookListOffsetFound func()

// latestTiered is Kafka's LATEST_TIERED_TIMESTAMP (KIP-1005), the lowest
// special timestamp runnel knows: it takes it for a timestamp.
const latestTiered = -5

// untilClose returns ctx, ended also when the broker closes, for a call
// that holds a partition open for as long as it works (Close waits for
// it), and the function that releases it.
func (b *Broker) untilClose(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(b.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// listOffset is ListOffset's look-up in p.
func listOffset(ctx context.Context, p *log.Partition, timestamp int64) (api.ListedOffset, error) {
	// From an open log, as the look-ups by time are: a partition deleted
	// since the look-up, or whose reopen failed, answers as they do
	// (ErrClosed, made ErrUnknownTopic or log.ErrLogFenced by the caller),
	// not with the offsets its closed log had.
	o, err := p.ListedOffsets(ctx)
	if err != nil {
		return api.ListedOffset{}, err
	}
	hw := o.HighWatermark
	switch timestamp {
	case api.Latest:
		return api.ListedOffset{Offset: hw, Timestamp: -1}, nil
	case api.Earliest, api.EarliestLocal:
		return api.ListedOffset{Offset: o.LogStart, Timestamp: -1}, nil
	}
	var off int64
	var ok bool
	if timestamp == api.MaxTimestamp {
		// Among the records a consumer can read (those below hw), as the
		// answer is one to read from: a larger timestamp above hw does
		// not make it hw.
		off, ok, err = p.OffsetOfMaxTimestamp(ctx, hw)
	} else {
		off, ok, err = p.OffsetForTime(ctx, timestamp)
	}
	if err != nil {
		return api.ListedOffset{}, err
	}
	if !ok || off >= hw {
		return api.ListedOffset{Offset: hw, Timestamp: -1}, nil
	}
	ts, err := timestampAt(ctx, p, off, hw)
	if err != nil {
		return api.ListedOffset{}, err
	}
	return api.ListedOffset{Offset: off, Timestamp: ts}, nil
}

// timestampAt returns the timestamp of the record at offset off of p,
// read below upTo; -1 when no record has that offset any more (compaction
// removed it, or DeleteRecords passed it, since the look-up found it).
func timestampAt(ctx context.Context, p *log.Partition, off, upTo int64) (int64, error) {
	data, err := p.ReadInto(ctx, nil, off, 1, upTo)
	if errors.Is(err, log.ErrOffsetOutOfRange) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	for b, err := range record.Batches(data) {
		if err != nil {
			return 0, err
		}
		if b.LastOffset() < off {
			continue
		}
		for r, err := range b.Records() {
			if err != nil {
				return 0, err
			}
			if r.Offset >= off {
				if r.Offset > off {
					return -1, nil
				}
				return r.Timestamp.UnixMilli(), nil
			}
		}
		return -1, nil
	}
	return -1, nil
}

// Fetch reads records of several partitions up to their high watermarks,
// waiting up to req.MaxWait until req.MinBytes are there (woken by appends,
// not by a timer tick), or until ctx ends. It serves consumer.Client. A
// fetch that waits for more than a byte is woken only by an append that
// may bring MinBytes (under SyncAlways the fsync that makes it durable),
// or by a change other than an append (a cut, a reopen, a deletion, a
// close): of one partition, the append that brings them; of k
// partitions, one that takes a partition ceil(d/k) bytes past where the
// fetch read it, d the bytes the fetch lacks (the bytes appended cannot
// make d unless one partition took that share), after which it counts,
// and waits again for what it then lacks. A partition of a compacted
// topic wakes it at each append, and every partition does of a fetch
// that found a compacted partition's first batch.
//
// Fetch itself fails only when:
//
//   - the broker is closed ([ErrClosed], also when it closes during the
//     call);
//   - ctx ends before anything was found (ctx's error);
//   - req is nil (api.ErrInvalidRequest).
//
// Per-partition errors are in each [api.FetchedPartition]'s Err, and end
// the wait at once: [ErrUnknownTopic], [ErrUnknownTopicID], [ErrInvalidTopic],
// log.ErrOffsetOutOfRange, record.ErrCorrupt, and log.ErrLogFenced for a
// partition whose reopen after a config change failed (see
// [Broker.AlterTopicConfig]).
//
// A wait also ends, at once, when a partition's offset falls out of range
// under it, answered log.ErrOffsetOutOfRange: DeleteRecords, or retention
// (Maintain), moved the log start past it. So it does when a partition's
// topic is deleted, answered ErrUnknownTopic. So a fetch waiting for MinBytes
// never waits out MaxWait (which has no bound) on an offset the consumer
// must reset. (Kafka's DelayedFetch completes at a deletion but does not
// look at the log start: its wait for MinBytes ends at fetch.max.wait.ms,
// 500 ms by default, and the fetch then finds the offset out of range.)
//
// A partition answered log.ErrOffsetOutOfRange carries the log start
// offset and high watermark as they were after the read that found its
// offset out of range. An offset that retention or DeleteRecords left below
// the log start during the call comes with a LogStartOffset above it.
//
// Like Kafka's, a partition's read stops at the end of a segment. In
// memory, it stops also at the end of the chunk of the file that holds its
// first batch: up to 4 MiB, or what one larger append wrote (see
// segment.Segment.Read, which hands out views rather than copies).
//
// The limits below may keep batches out of the answer. Once the partitions
// hold MinBytes below their high watermarks, each counted up to its
// MaxBytes (or the request's) whatever the request's MaxBytes, as Kafka's
// delayed fetch counts them, the answer comes, though its batches may be
// fewer (the next fetch reads on). A MinBytes above the request's limit
// (below) counts as that limit, as Kafka's broker waits for
// min(min_bytes, max_bytes, fetch.max.bytes).
//
// The batches of a partition stay within its MaxBytes, and those of the
// response within req.MaxBytes (50 MiB when not set) or the broker's
// [Config].FetchMaxBytes (Kafka's fetch.max.bytes, 55 MiB by default),
// whichever is smaller, as Kafka's broker caps a request's max bytes at its
// fetch.max.bytes. A partition's MaxBytes above what is left of that is cut
// to it.
//
// The exception: the first partition with data returns its first batch
// whatever its size, as in Kafka (KIP-74), so that a consumer makes
// progress. A later partition whose first batch does not fit returns none,
// and that batch is not read.
//
// On the OS's file system the batches are read into memory. Each partition's
// read allocates up to its limit (its MaxBytes, or what is left of the
// request's limit), less where its segment ends first (1 GiB segments by
// default), whatever it returns. So a fetch may hold up to
// Config.FetchMaxBytes, and its first partition with data one batch past it
// when that batch is larger. Kafka's broker, instead, sends the bytes from
// the page cache.
//
// (Before 2026-12-05, which added the cap, a MaxBytes of math.MaxInt32
// over a partition of 40 MB allocated 40 MB. Before 2026-12-04 a later
// partition's first batch that did not fit was read whole and dropped: 64
// partitions of a 256 KiB batch in a fetch of 600 KiB allocated 22.9 MB.)
//
// On the memory FS they are views of the log, without a copy: do not
// modify them (see api.FetchedPartition), as a write to them is a write to
// the log, served to every later fetch.
//
// A MaxBytes from outside your code chooses how much of the cap a fetch
// takes: set Config.FetchMaxBytes to what one fetch may hold, and bound the
// fetches in flight, which add up.
//
// Each FetchedPartition carries its topic's ID. A FetchPartition that names
// an ID no topic of its name has any more (the topic was deleted, whether
// or not it was created again) gets ErrUnknownTopicID, as Kafka's fetch
// v13+ answers UNKNOWN_TOPIC_ID (with Kafka's code 100). For a topic
// deleted and not created again the error matches ErrUnknownTopic too,
// which is all a fetch naming no ID gets.
//
// A partition that a config change is reopening (or a deletion holds) is
// answered, in a fetch that names others and holds no records yet, as one
// with nothing to read, rather than waited for. Its reopen (a closing
// fsync, a recovery) does not hold back the other partitions' records, as
// Kafka's broker answers each partition on its own. A fetch that waits is
// woken when the reopen ends, and reads it then. A fetch of that partition
// alone waits for the reopen, until ctx ends.
//
// req.Partitions may name any number of partitions, and one more than once:
// each entry is read and answered on its own, and a fetch that waits waits
// on each, those of several entries on one channel they all close (a
// log.Wake), whatever their number. Nothing bounds their number, as
// nothing but a request's size bounds it in Kafka: the cost of a fetch
// grows with it, so bound a list that comes from outside your code.
func (b *Broker) Fetch(ctx context.Context, req *api.FetchRequest) (api.FetchResponse, error) {
	if b.isClosed() {
		return api.FetchResponse{}, ErrClosed
	}
	if req == nil {
		return api.FetchResponse{}, fmt.Errorf("%w: nil fetch request", api.ErrInvalidRequest)
	}
	var timer <-chan time.Time
	if req.MaxWait > 0 {
		t := time.NewTimer(req.MaxWait)
		defer t.Stop()
		timer = t.C
	}
	// The broker's cap, Kafka's fetch.max.bytes, bounds the request's
	// limit, and its MinBytes: Kafka's broker fetches with
	// min(max_bytes, fetch.max.bytes), and waits for min(min_bytes,
	// that). A
	// partition's own MaxBytes is read within what is left of maxBytes
	// (fetchOnce), and counted by a wait up to its own (readable), as
	// Kafka's delayed fetch counts it; that count stops at want.
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 50 << 20
	}
	maxBytes = min(maxBytes, b.cfg.FetchMaxBytes)
	want := min(max(req.MinBytes, 1), maxBytes)
	var (
		resp    api.FetchResponse
		waits   []<-chan struct{}
		total   int
		failed  bool
		err     error
		changed bool // resp read nothing, and a wake came: read only what changed
		// marks, for a fetch of several partitions or that wants more
		// than a byte, hold where each partition stood before its
		// last read, which its wait counts from (see byteWait):
		// marks[i] that of req.Partitions[i]. nil for others: a fetch
		// of one partition that wants a byte (the common long poll)
		// waits on the partition's Changed channel (waits).
		marks []log.Mark
		// wake is such a fetch's wait on its partitions (see
		// byteWait): one channel for them all, its waits kept from one
		// wait to the next. nil for others.
		wake *log.Wake
		// look is the answer of a wake's look at the partitions, kept
		// for the next look's (see fetchOnce).
		look []api.FetchedPartition
	)
	if len(req.Partitions) > 1 || len(req.Partitions) == 1 && want > 1 {
		marks = make([]log.Mark, len(req.Partitions))
		wake = new(log.Wake)
	}
	for {
		if b.isClosed() {
			return api.FetchResponse{}, ErrClosed
		}
		if changed {
			total, failed, err = b.fetchChanged(ctx, req, maxBytes, resp, waits, marks, wake)
		} else {
			resp, waits, total, failed, err = b.fetchOnce(ctx, req, maxBytes, false, true, marks, nil)
		}
		changed = false
		if err != nil {
			return api.FetchResponse{}, err
		}
		if failed && b.closed.Load() {
			return api.FetchResponse{}, ErrClosed // closed during fetchOnce
		}
		if total >= want || failed || req.MaxWait <= 0 {
			return resp, nil
		}
		var pr *fetchProbe // what readable counted past resp, once resp holds records
		if total > 0 {
			pr = newFetchProbe(req, resp, maxBytes, marks)
			if total+b.readable(ctx, req, resp, pr, want-total, false) >= want {
				// The log holds MinBytes already: no append need come.
				return resp, nil
			}
		}
		// Wait. A fetch that read nothing is made again at each wake, which
		// reads only what was appended since (see below), and only the
		// partitions that changed since their read (fetchChanged). One whose
		// answer holds records, fewer than MinBytes, looks at each wake at
		// what changed without reading again what was read and counted: each
		// partition's errors (a read of no bytes) and the bytes appended
		// since (readable goes on from where it stopped). A wake that read
		// every partition again from its offset cost, at each append, as much
		// as the partitions held past their offsets, on disk a copy of it (a
		// MinBytes above what they hold, with a long MaxWait, read them whole
		// at every append: review44dos). The fetch is made again once a
		// partition fails, or once what the partitions hold may answer it:
		// pr.bound, which counts every batch a read found whole, is at least
		// what a fetch made then would count (its first partition with data
		// returns its first batch whatever its size, KIP-74): where it
		// reaches MinBytes already, and the fetch does not, each wake makes
		// the fetch again, as all did. That holds while each partition's
		// first batch from its offset is the one the fetch found: a
		// compaction may remove it, and the next, counted whole, be larger
		// than all counted (a fetch whose first batch was past its MaxBytes
		// counted nothing more of the partition, and waited until MaxWait): a
		// wake makes the fetch again where a compaction came to a compacted
		// partition it counted since the fetch read it (firstMoved, by the
		// partition's marks), or a partition's high watermark came down. And
		// it holds while the batches counted keep their sizes: a compaction
		// may make one larger (a batch of tombstones cleaned the first time
		// takes a delete horizon), which a fetch made then counts so: the
		// same wake (firstMoved) makes the fetch again.
		for again := false; !again; {
			var woke int
			// ctx's Done is taken before wake's waits are added: a ctx
			// of the application's own type may panic in it, which
			// left the waits in their partitions' heaps, each holding
			// wake, until an append or another change met it
			// (TestFetchLongPollCtxDonePanicLeavesNoWaits).
			done := ctx.Done()
			if wake != nil {
				byteWait(req, resp, total, want, pr, marks, wake)
				woke = waitOne(done, b.ctx.Done(), timer, wake.Done())
				wake.Stop()
			} else {
				// A fetch of one partition that wants a byte (the
				// common long poll) waits on its Changed channel; one
				// that names none, on nothing but ctx, the broker's
				// closing and the timer.
				var wait <-chan struct{}
				if len(waits) > 0 {
					wait = waits[0]
				}
				woke = waitOne(done, b.ctx.Done(), timer, wait)
			}
			switch woke {
			case waitCtx:
				if want > 1 {
					// A fetch that wants more than a byte reads once
					// more, whether or not it holds records: the
					// appends that did not bring MinBytes need not
					// have woken it (byteWait), and the answer holds
					// what they added, and the high watermark of now.
					// A partition that no call holds exclusively is
					// read whatever ctx says; if one is (a reopen), an
					// answer that holds records stands as the first
					// read made it, and one that holds none goes past
					// that partition (skipBusy), as the reads at the
					// wakes do: a read that waited for it would fail
					// with ctx's error and drop what the others hold.
					// One that read nothing and finds nothing still
					// answers ctx's error. (A fetch of MinBytes 1 has
					// nothing to read again: any append wakes it, and
					// its answer is due then.)
					if r, _, n, _, err := b.fetchOnce(ctx, req, maxBytes, false, total == 0, marks, nil); err == nil {
						resp, total = r, n
					}
				}
				if total > 0 {
					return resp, nil
				}
				return resp, ctx.Err()
			case waitClosed:
				return api.FetchResponse{}, ErrClosed
			case waitTimer:
				// MaxWait passed: one last look, past a partition held
				// exclusively (a reopen) whether or not records are held:
				// the answer is due now, and a read that waited for the
				// reopen would hold back the records held, until ctx
				// ended them with it.
				resp, _, _, failed, err = b.fetchOnce(ctx, req, maxBytes, false, true, marks, nil)
				if err != nil {
					return api.FetchResponse{}, err
				}
				if failed && b.closed.Load() {
					return api.FetchResponse{}, ErrClosed
				}
				return resp, nil
			}
			if total == 0 {
				// Nothing was read: the fetch made again reads only what
				// was appended since, no more than a look would, and
				// only of the partitions that changed. The
				// common long poll (MinBytes 1) answers so at its first
				// wake, with one read of the partition appended to.
				changed = true
				break
			}
			if b.isClosed() {
				return api.FetchResponse{}, ErrClosed
			}
			var now api.FetchResponse
			now, waits, _, failed, err = b.fetchOnce(ctx, req, maxBytes, true, false, marks, look)
			look = now.Partitions
			if err != nil {
				// ctx ended while the look waited for a partition held
				// exclusively (a reopen): the answer holds records, and
				// stands, as when ctx ends in the wait (review45mut: it
				// failed with ctx's error, the records dropped).
				return resp, nil
			}
			// The answer's offsets are those of now, as a read now
			// would give them (and its batches, where no room was left
			// for more). A topic created again under the name is read
			// again.
			for i, p := range now.Partitions {
				switch out := &resp.Partitions[i]; {
				case p.Err != nil || out.Err != nil:
				case p.TopicID != out.TopicID:
					failed = true
				case p.HighWatermark < out.HighWatermark:
					// Truncated: what resp holds may be past it.
					failed = true
				default:
					out.HighWatermark, out.LogStartOffset = p.HighWatermark, p.LogStartOffset
				}
			}
			b.readable(ctx, req, resp, pr, want-total, true)
			again = failed || total+pr.bound >= want || firstMoved(resp, pr)
		}
	}
}

// What waitOne saw first.
const (
	waitCtx = iota
	waitClosed
	waitTimer
	waitMoved // a partition
)

// waitOne waits, in a plain select, for ctx to end (done, its Done), the
// broker to close (closing, which Close closes before it closes the
// partitions, and which alone ends the wait of a request that names no
// partition, whose wait is nil), the timer to fire or wait to close: the
// partition's Changed channel of a long poll of one partition that wants
// a byte, and the channel of every other fetch's log.Wake, which its
// partitions close (see byteWait). Until 2026-12-07 a fetch of several
// partitions that wanted a byte waited on their Changed channels in a
// reflect.Select (waitAny), with goroutines of the call for those past
// 65,532.
func waitOne(done, closing <-chan struct{}, timer <-chan time.Time, wait <-chan struct{}) int {
	select {
	case <-done:
		return waitCtx
	case <-closing:
		return waitClosed
	case <-timer:
		return waitTimer
	case <-wait:
		return waitMoved
	}
}

// testHookFetchRead, when set (by tests: setFetchReadHook), runs in
// fetchOnce between the look-up of a partition's offsets and its read.
// Atomic, so that a test may set it back while a fetch it started still
// reads.
var testHookFetchRead atomic.Pointer[func()]

// fetchOnce reads each requested partition once. It takes each partition's
// change channel before reading it (waits[i], that of req.Partitions[i];
// nil for one not found, which fails the fetch), so that an append after
// the read closes a channel the caller then waits on. A read that waited
// for a partition's reopen until ctx ended ends it with ctx's error
// (err): what it read is left to the next fetch. With check, each read
// is one of no bytes, which fails as a read does (see below): a wake's
// look at the partitions' errors, and their channels again. With
// skipBusy, a partition held exclusively (a reopen) is not read, when
// the request names others: a read made while the answer holds no
// records yet, which would otherwise wait for the reopen, the others'
// records held back. marks, if not nil, take each partition's
// log.Mark in place of its channel (see fetchAt), and waits is then nil:
// such a fetch waits on its log.Wake (see byteWait), and a slice of
// channels made for nothing at each read and each wake's look cost 0.3%
// of the instructions of the wakes of 100 fetches of 64 partitions,
// until 2026-12-07. resp.Partitions is reuse, cleared, when it has room
// for them: a wake's look passes the last look's, whose answer it read
// and dropped, where it made 96 bytes a partition at each wake, most of
// what such a fetch allocated (100 fetches of 64 partitions: 0.6 MB an
// append, and a fifth of the instructions of the wakes went to the
// collector).
func (b *Broker) fetchOnce(ctx context.Context, req *api.FetchRequest, maxBytes int, check, skipBusy bool, marks []log.Mark, reuse []api.FetchedPartition) (resp api.FetchResponse, waits []<-chan struct{}, total int, failed bool, err error) {
	if n := len(req.Partitions); cap(reuse) >= n {
		resp.Partitions = reuse[:n]
		clear(resp.Partitions)
	} else {
		resp.Partitions = make([]api.FetchedPartition, n)
	}
	if marks == nil {
		waits = make([]<-chan struct{}, len(req.Partitions))
	}
	for i := range req.Partitions {
		var wait *<-chan struct{}
		if marks == nil {
			wait = &waits[i]
		}
		n, bad, err := b.fetchAt(ctx, req, i, &resp.Partitions[i], wait, marks, maxBytes, total, check, skipBusy)
		if err != nil {
			return resp, waits, total, failed, err
		}
		total += n
		failed = failed || bad
	}
	return resp, waits, total, failed, nil
}

// fetchChanged reads again, into resp, the partitions of a fetch that
// may answer otherwise now (see fetchStands), as fetchOnce reads them
// (skipBusy, in their order), and takes their channels again; every
// other partition's answer in resp stands. It is for a fetch that read
// nothing (resp holds no records, and no errors, as every partition's
// first read found) and was woken: only the partitions that changed are
// read again, those whose channel closed, where every partition was (a
// consumer of P partitions read 2P of them at each append). Only the
// first partition with data may take a batch past the limits, as in
// fetchOnce: those not read again hold none. It returns the bytes read,
// whether a partition failed, and ctx's error as fetchOnce does (resp
// then partly read). With marks (see byteWait), waits is nil: the
// partitions' waits are those of wake, which its Stop ended (Fired in
// place of a channel closed), and a partition read again takes its mark
// again.
func (b *Broker) fetchChanged(ctx context.Context, req *api.FetchRequest, maxBytes int, resp api.FetchResponse, waits []<-chan struct{}, marks []log.Mark, wake *log.Wake) (total int, failed bool, err error) {
	for i := range req.Partitions {
		var (
			stands bool
			wait   *<-chan struct{}
		)
		if marks != nil {
			stands = !wake.Fired(i) && b.fetchStands(req.Partitions[i], resp.Partitions[i], nil, true)
		} else {
			stands = b.fetchStands(req.Partitions[i], resp.Partitions[i], waits[i], false)
			wait = &waits[i]
		}
		if stands {
			continue
		}
		resp.Partitions[i] = api.FetchedPartition{}
		n, bad, err := b.fetchAt(ctx, req, i, &resp.Partitions[i], wait, marks, maxBytes, total, false, true)
		if err != nil {
			return total, failed, err
		}
		total += n
		failed = failed || bad
	}
	return total, failed, nil
}

// fetchStands reports whether out, the answer of a read of fp that
// found nothing (no records, no error) after it took the partition's
// change channel wait, is what a read of it now gives: wait is still
// open and is still the channel of the partition that fp names (its
// topic was not deleted, nor created again), and the partition's high
// watermark and log start offset are those out holds. Every change of
// what such a read answers closes the channel once made (see
// log.Partition.Changed): an append, and under SyncAlways the fsync,
// that moves the high watermark; a cut (DeleteRecords, retention, a
// truncation); a reopen, a close, a deletion's discard; the release of
// a lock the read went past (Busy). Those that show before their wake —
// a deletion takes the topic from the broker's map before it discards
// its partitions one by one, an append's high watermark moves before
// its notify — are looked at here, without a read: a look-up and the
// offsets. A change whose wake has not run yet, and that shows in
// neither, is one a read made just before it would miss too.
//
// byMark says the partition's wait was its part of the fetch's
// log.Wake (see byteWait), which did not fire (the caller looked: wait
// is then nil), and which the appends that do not reach its count leave
// waiting: an append shows in the high watermark, and a change other
// than an append (which bumps the partition's epoch) that came after the
// wait stopped and shows in neither is seen by the next wait: its mark,
// of before the change, makes its wait fire at once, and the partition
// is read again then.
func (b *Broker) fetchStands(fp api.FetchPartition, out api.FetchedPartition, wait <-chan struct{}, byMark bool) bool {
	select {
	case <-wait:
		return false
	default:
	}
	t, p, err := b.fetchPartition(fp)
	if err != nil || t.ID != out.TopicID || !byMark && p.Changed() != wait {
		return false
	}
	o := p.Offsets()
	return o.HighWatermark == out.HighWatermark && o.LogStart == out.LogStartOffset
}

// fetchAt reads req.Partitions[i] into out for fetchOnce (see there for
// check and skipBusy), the fetch having read total bytes before it, after
// it took the partition's change channel into wait, or, where marks is
// not nil (a fetch of several partitions, or that wants more than a
// byte: see byteWait), its log.Mark into marks[i] (wait, then, is nil,
// and not used). It returns the bytes it read,
// whether the partition failed (out.Err), and ctx's error when a read
// that waited for a reopen ended with it.
func (b *Broker) fetchAt(ctx context.Context, req *api.FetchRequest, i int, out *api.FetchedPartition, wait *<-chan struct{}, marks []log.Mark, maxBytes, total int, check, skipBusy bool) (n int, failed bool, err error) {
	fp := req.Partitions[i]
	out.Topic, out.Partition = fp.Topic, fp.Partition
	t, p, err := b.fetchPartition(fp)
	if err != nil {
		// No partition to tell of: Kafka's INVALID_HIGH_WATERMARK
		// and INVALID_LOG_START_OFFSET (FetchResponse.partitionResponse),
		// where 0 would read as an empty partition's.
		out.HighWatermark, out.LogStartOffset = -1, -1
		out.Err = err
		if marks != nil {
			marks[i] = log.Mark{} // its ChangedPast answers at once
		}
		return 0, true, nil
	}
	out.TopicID = t.ID
	if marks != nil {
		marks[i] = p.Mark() // before the read, as the channel
	} else {
		*wait = p.Changed() // before the read: see fetchOnce
	}
	o := p.Offsets()
	out.HighWatermark, out.LogStartOffset = o.HighWatermark, o.LogStart
	limit := fp.MaxBytes
	if limit <= 0 || limit > maxBytes-total {
		limit = maxBytes - total
	}
	upTo := out.HighWatermark
	if limit <= 0 && total > 0 {
		// No room left for records, but the partition is read all
		// the same, as Kafka's broker reads every partition of a
		// fetch whatever the request's max bytes left
		// (ReplicaManager.readFromLocalLog: a read of 0 bytes): a
		// read up to the offset itself, which returns nothing and
		// reads no segment, but fails as a read does — with
		// OFFSET_OUT_OF_RANGE for an offset below the log start or
		// past the log end, ErrLogFenced for a partition whose
		// reopen failed (Kafka's KAFKA_STORAGE_ERROR for an offline
		// partition), ErrUnknownTopic for one deleted meanwhile.
		limit, upTo = 0, fp.Offset
	}
	if check {
		limit, upTo = 0, fp.Offset
	}
	if hook := testHookFetchRead.Load(); hook != nil {
		(*hook)()
	}
	if skipBusy && len(req.Partitions) > 1 && p.Busy() {
		// A config change's reopen (or a deletion) holds the
		// partition: its read would wait for it, and hold back the
		// partitions after it, and those before, which the answer
		// waits for. It is answered as one with nothing to read, as
		// Kafka's broker answers each partition of a fetch on its own;
		// a wait wakes when the lock is released (see
		// log.PartitionLock.Unlock), or when a Lock that waited for
		// it gives up (see log.Partition.Lock), and reads it then.
		return 0, false, nil
	}
	read := p.ReadInto
	if total > 0 {
		// Only the first partition with data may take a batch past
		// the limits (below): a later one's first batch that does
		// not fit is not read (Kafka's read without minOneMessage).
		read = p.ReadWithin
	}
	data, err := read(ctx, nil, fp.Offset, limit, upTo)
	if err != nil {
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return 0, false, err
		}
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			// Retention or DeleteRecords may have moved the log
			// start past the offset since the offsets were taken:
			// answer with those the read found it out of, so that
			// the offset is outside them (a client that goes on
			// from LogStartOffset gets there).
			o := p.Offsets()
			out.HighWatermark, out.LogStartOffset = o.HighWatermark, o.LogStart
		}
		out.Err = idGone(b.partitionGone(err, p), fp)
		if errors.Is(out.Err, ErrUnknownTopic) {
			// Deleted under the read: no partition to tell of, as
			// above (Kafka's readFromLocalLog answers an
			// UnknownTopicOrPartitionException so too).
			out.HighWatermark, out.LogStartOffset = -1, -1
		}
		return 0, true, nil
	}
	if len(data) > limit && total > 0 {
		// A read returns its first batch however large (KIP-74), but
		// as in Kafka only the first partition with data may take
		// one past the limits, so that a consumer makes progress:
		// this one's comes in a later fetch that puts it first.
		return 0, false, nil
	}
	out.Records = data
	return len(data), false, nil
}

// byteWait adds to wake, for a fetch of several partitions or that wants
// more than a byte (marks, which fetchAt took before each partition's
// read), each partition's
// wait, in req.Partitions' order, so that wake's channel is closed once
// an append may have brought the partitions to what the fetch wants, or
// a change other than an append came (see log.Mark.ChangedPast and
// log.Wake), so that a wait for MinBytes is not woken by every append,
// each wake a look and a count of what it added, only to wait again
// (1,000 such fetches of a partition cost about 7 ms of CPU an append;
// Kafka's broker, too, looks at every fetch waiting on a partition at
// each append). The caller waits on wake.Done() and calls wake.Stop()
// once it no longer waits. The partitions' waits close one channel, the
// fetch's: one channel a wait where each partition's was a channel of
// its own, and a plain select on it where a reflect.Select of them all
// (a wake of a fetch of 64 partitions cost 27.3 M instructions, a
// third more than with their Changed channels, until 2026-12-07).
//
// The fetch counts, at a wake, the bytes of whole batches from each
// partition's offset up to its high watermark then (each partition's up
// to its room: see readable). The appends after a partition's mark add
// what they add past the high watermark the fetch looked at after it,
// and the mark's count of bytes below the high watermark grows by as
// much, or more. That holds where the fetch counted every batch up to
// it, and nothing but an append (which it counts) changes what it
// counts: so a partition that read nothing at the high watermark (total
// 0), or whose count (pr) reached the high watermark it looked at last,
// and whose log is not compacted. Those are the partitions that count
// (k of them). One whose room is spent counts nothing more, and no
// append to it answers the fetch: it waits for a change other than an
// append. Any other — the count stopped short (a read that failed, a
// partition read past, Busy, below its high watermark), the log
// compacted (a compaction may change the first batch counted whole:
// see firstMoved; and may make what a read finds larger than the
// appends made it: a batch of tombstones cleaned the first time takes a
// delete horizon, and its records' timestamp deltas from it grow, so
// that no count of appended bytes bounds it, where the fetch holds
// nothing, TestFetchWaitCompactedHoldingNothingBatchGrown, and where it
// holds records, whose wake makes the fetch again after a compaction:
// see firstMoved, TestFetchWaitCompactedBatchGrown), or the batches
// counted
// whole already make MinBytes (each wake makes the fetch again, and
// then every partition is such) — is woken by every append to it, as
// before. So is every partition of a fetch that found a compacted
// partition's first batch: a compaction wakes no one, and an append to
// any of its partitions wakes the fetch to look at its marks
// (firstMoved) before the shares (TestFetchWaitCompactedFirstBatchWokenByAnotherPartition).
//
// The fetch lacks d bytes: want less what it read and counted (total,
// pr.bound). Say no partition of those woken by every append grew (else
// it wakes): the count then reaches want only once the k partitions
// that count grew by d in all since their marks, one of them by d/k or
// more, ceil(d/k) in whole bytes (were each below it, they grew by
// k*(ceil(d/k)-1) < d at most). So each waits for ceil(d/k) bytes,
// and, at the wake, the fetch counts, and waits again for what it then
// lacks. No wake that may answer it is lost; ceil(d/k) is the largest
// wait the same for each that loses none. Of one partition, k is 1 and
// the wait is for d. A partition whose room is spent is not one of the
// k: it counts nothing, whatever it grows. Where k is 0, only the
// partitions woken by every append, and the changes other than an
// append, wake the fetch.
//
// A fetch of several partitions that wants a byte (a consumer's long
// poll, which read nothing) waits for a byte of each, as the count above
// makes it: any append to one, and any change other than an append,
// wakes it, as the partitions' Changed channels, on which it waited in a
// reflect.Select until 2026-12-07, did (a Changed channel closes at the
// same changes: log.Partition's notify and grew;
// TestFetchOfSeveralPartitionsForAByteWokenByEveryChange). Callgrind,
// 100 such fetches and appends of one record round the partitions in
// fake time, each fetch answering and made again at each (a throwaway
// test, 60 appends less 20, two runs): 13.9–14.0 M instructions an
// append where 18.1 M with 64 partitions, 2.88–2.90 M where 3.29–3.30 M
// with 8 (the select's locks of every channel and its wait queues, and
// an append's close and make of a Changed channel taken). One partition
// keeps its Changed channel, as cheap: 1.96–1.98 M an append, where a
// build that gave it a Wake cost 2.16 M.
func byteWait(req *api.FetchRequest, resp api.FetchResponse, total, want int, pr *fetchProbe, marks []log.Mark, wake *log.Wake) {
	if want == 1 {
		// A fetch of several partitions that wants a byte (it read
		// nothing, total 0): each partition waits for a byte, as the
		// needs below make it (needShare or needAny, and ceil(1/k) is
		// 1).
		for i := range marks {
			wake.Add(marks[i], 1)
		}
		return
	}
	// A fetch that found a compacted partition's first batch (whose
	// compactions since firstMoved looks at) is woken by
	// every append to any partition, as before: a compaction, which
	// wakes no one, may have removed that batch, and a fetch made again
	// count the next whole, or made a batch counted larger.
	anyAppend := false
	if pr != nil {
		for i := range marks {
			if pr.firsts[i] > 0 && (marks[i].Compacted() || pr.compact[i]) {
				anyAppend = true
			}
		}
	}
	// needs[i] is what partition i waits for: needShare, for one that
	// counts (ceil(d/k)); needAny, for any append; needNone, for none.
	// Each is found once, kept in an array of the call's up to 256
	// partitions (found twice, once to count k, the wakes of 100
	// fetches of 64 partitions cost 0.1 M instructions an append more,
	// of 13.4 M, until 2026-12-07).
	const (
		needShare = iota
		needAny
		needNone
	)
	var small [256]uint8
	needs := small[:0]
	if len(marks) > len(small) {
		needs = make([]uint8, 0, len(marks))
	}
	k := int64(0)
	for i := range marks {
		n := uint8(needAny)
		switch {
		case marks[i].Compacted():
			// Any append: a compaction, which wakes no one, may make
			// what a read finds larger than the appends made it (a
			// batch of tombstones rebuilt with its delete horizon),
			// also where the fetch holds nothing.
		case total == 0:
			if req.Partitions[i].Offset >= resp.Partitions[i].HighWatermark {
				n = needShare
			}
		case total+pr.bound >= want || anyAppend:
			// Any append: each wake makes the fetch again (see
			// Fetch), or looks at a compacted partition (above).
		case pr.rooms[i] <= 0:
			n = needNone // no append adds to the count
		case pr.hws[i] >= 0 && pr.ends[i] >= pr.hws[i]:
			n = needShare
		}
		if n == needShare {
			k++
		}
		needs = append(needs, n)
	}
	var each int64
	if k > 0 {
		d := int64(want - total)
		if pr != nil {
			d -= int64(pr.bound)
		}
		each = (d + k - 1) / k
	}
	for i, n := range needs {
		switch n {
		case needShare:
			wake.Add(marks[i], each)
		case needAny:
			wake.Add(marks[i], 1)
		default:
			wake.Add(marks[i], math.MaxInt64)
		}
	}
}

// fetchPartition looks up a fetch's partition, and its topic. A fetch that
// names a topic ID names the topic by it, as Kafka's fetch v13+ does: an
// ID that no topic of the name has — the topic was deleted, and maybe
// created again — is ErrUnknownTopicID (UNKNOWN_TOPIC_ID), whatever
// the name has now; an unknown partition of the topic it names is
// ErrUnknownTopic (UNKNOWN_TOPIC_OR_PARTITION), as in Kafka.
func (b *Broker) fetchPartition(fp api.FetchPartition) (*log.Topic, *log.Partition, error) {
	t, err := b.topic(fp.Topic)
	if err != nil {
		return nil, nil, idGone(err, fp)
	}
	if !fp.TopicID.IsZero() && fp.TopicID != t.ID {
		return nil, nil, fmt.Errorf("%w: %s is not topic %s any more (it is %s: deleted and created again)", ErrUnknownTopicID, fp.Topic, fp.TopicID, t.ID)
	}
	if fp.Partition < 0 || int(fp.Partition) >= len(t.Partitions) {
		return nil, nil, fmt.Errorf("%w: %s has no partition %d", ErrUnknownTopic, fp.Topic, fp.Partition)
	}
	return t, t.Partitions[fp.Partition], nil
}

// idGone turns the ErrUnknownTopic of a fetch that names a topic ID, the
// topic being gone (deleted before the fetch or under its read), into an
// error that matches ErrUnknownTopicID as well; other errors it returns
// as they are.
func idGone(err error, fp api.FetchPartition) error {
	if fp.TopicID.IsZero() || !errors.Is(err, ErrUnknownTopic) {
		return err
	}
	// It matches ErrUnknownTopic still: the name is unknown too, and a
	// caller that asks whether the topic is gone is told it is. Its
	// Kafka code is UNKNOWN_TOPIC_ID's (api's table puts it first).
	return fmt.Errorf("%w: %s: no topic has ID %s (it was deleted: %w)", ErrUnknownTopicID, fp.Topic, fp.TopicID, err)
}

// fetchProbe is what readable has counted of a fetch that waits: for
// each partition, the offset after the bytes counted and the room left
// (its MaxBytes, or the request's, less what the fetch read and what was
// counted since); the bytes counted in all, each batch up to the room
// left (more), and whole (bound).
type fetchProbe struct {
	ends  []int64
	rooms []int
	// hws holds each partition's high watermark that readable's last
	// call counted up to (-1: it did not look at the partition).
	hws   []int64
	more  int
	bound int
	buf   []byte // reused by the reads (on the OS's FS; a view in memory)
	// firsts holds the size of each partition's first batch from its
	// offset, as the fetch or a probe read found it (0: none yet); compact,
	// whether its log was seen with the compact policy since pr began,
	// by its marks (see firstMoved).
	firsts  []int
	compact []bool
	// marks are the fetch's, which each look at a wake takes again
	// (fetchAt); gens, a copy of them as the reads that made resp took
	// them, before any batch pr counts (see firstMoved).
	marks []log.Mark
	gens  []log.Mark
}

// firstSize returns the size of data's first batch, 0 when it holds none.
func firstSize(data []byte) int {
	for bt, err := range record.Batches(data) {
		if err != nil {
			break
		}
		return len(bt)
	}
	return 0
}

// newFetchProbe starts the count of the bytes past resp, the answer of a
// fetch of req: each partition's from the offset after its batches.
// marks are the fetch's (see byteWait), taken before the reads that made
// resp, and again by each look at a wake.
func newFetchProbe(req *api.FetchRequest, resp api.FetchResponse, maxBytes int, marks []log.Mark) *fetchProbe {
	n := len(req.Partitions)
	pr := &fetchProbe{ends: make([]int64, n), rooms: make([]int, n), hws: make([]int64, n), firsts: make([]int, n), compact: make([]bool, n),
		marks: marks, gens: slices.Clone(marks)}
	for i, fp := range req.Partitions {
		pr.hws[i] = -1
		limit := fp.MaxBytes
		if limit <= 0 {
			limit = maxBytes
		}
		pr.ends[i] = nextAfter(resp.Partitions[i].Records, fp.Offset)
		pr.rooms[i] = limit - len(resp.Partitions[i].Records)
		pr.firsts[i] = firstSize(resp.Partitions[i].Records)
		pr.compact[i] = marks[i].Compacted()
	}
	return pr
}

// firstMoved reports whether a partition of a fetch that waits, whose log is
// compacted (or was, since pr began), and of which the fetch holds or pr
// counted batches, may hold others now than those counted, so that the fetch
// is made again: a compaction, or a change other than an append, came since
// the reads that made resp (log.Mark.Rewritten, between pr.gens and the marks
// the look of the wake took). A compaction may remove the first batch pr
// found at the partition's offset (the next, which a fetch made now counts
// whole if its partition comes first with data, may be larger than all pr
// counted: TestFetchWaitCompactedFirstBatch), or make a batch larger, resp's
// or one counted past it — a batch of tombstones cleaned the first time takes
// a delete horizon — and a fetch made now counts it so, where pr counted it
// at its size before (TestFetchWaitCompactedBatchGrown). A compaction whose
// swap the look's marks do not show yet (it ran as they were taken) shows in
// the next wake's: such a fetch is woken by every append to any of its
// partitions (see byteWait), as after a compaction once it waits. A change
// other than an append (a cut, a reopen, a close, a deletion, a compaction's
// swap that failed once it had closed the segments it replaces: see
// log.Log.OnCut) that the look's marks do not show fires the fetch's next
// wait at once (its marks' epoch is behind, see log.Wake.Add), or, made after
// the wait began, wakes it. Whether a log is compacted it takes from the
// partition's marks (pr.compact once one of them said so). The fetch made
// again reads its partitions from their offsets, as at its start, and counts
// from there (readable): a compaction costs each fetch that waits holding
// records of its log one such read.
//
// Until 2026-12-07 it also looked up, at each wake, each such partition whose
// marks showed no compaction since, and read its first batch again to compare
// it with pr's. That found no change the marks do not show, at this wake or
// at the next, once a failed swap bumped the epoch too (until then the read
// alone, failing, saw the offsets a failed swap left closed:
// TestFetchWaitHoldingRecordsSeesAFailedSwap): sooner only a compaction's
// swap that ran as the look took the marks, which the next wake sees, as it
// sees one that runs just after the look (a change other than an append fires
// the next wait at once: TestFetchWaitCompactedChangedAfterItsLookMarked).
// And it cost a fifth of the instructions of the wakes of fetches holding
// records of a compacted topic (100 fetches of 64 partitions, appends of 1
// KB: 16.4 M instructions an append, 13.2 M without it).
func firstMoved(resp api.FetchResponse, pr *fetchProbe) bool {
	for i, out := range resp.Partitions {
		if pr.marks[i].Compacted() {
			pr.compact[i] = true
		}
		if out.Err != nil || pr.firsts[i] == 0 || !pr.compact[i] {
			continue
		}
		if pr.gens[i].Rewritten(pr.marks[i]) {
			return true
		}
	}
	return false
}

// readable counts the bytes, up to need, that resp's partitions hold
// below their high watermarks after the batches resp has, as Kafka's
// delayed fetch counts them: each partition's up to its limit (its
// MaxBytes, or the request's) less what resp has of it, and returns the
// count (pr.more). A read stops at
// the end of a segment (and on the memory FS at the end of a chunk of its
// file), so one pass of fetchOnce may find less than MinBytes where the
// log holds more below the high watermark; and the limits may keep out
// of resp bytes that are there: a batch larger than its partition's room
// left, a partition after one that filled the request's MaxBytes. Kafka's
// delayed fetch counts those (bytes from the fetch offset to the high
// watermark, at most the partition's max bytes, whatever the request's
// max bytes) and completes; a wait for an append would wait for records
// the log already has, and the answer would be no larger for it. A batch
// that does not fit counts as the room it fills. The reads are probes:
// their bytes are not returned (that would copy, where a read is a view),
// the consumer's next fetch reads them.
//
// It also counts each batch it reads whole (pr.bound), and goes on from
// where its last call on pr stopped: a wake of a fetch that waits reads
// only what was appended since. The first call counts up to the high
// watermarks resp has, so that an answer of resp holds what was counted;
// at a wake (fresh), up to those of now, and until the bound reaches
// need. A partition whose log was cut below what was counted (a
// truncation, DeleteRecords) keeps its count: the fetch may be made
// again early, and waits again. A compaction may make a batch counted
// larger: a wake at which a compacted partition's marks show one since
// the fetch read makes the fetch again (firstMoved), and pr begins anew.
func (b *Broker) readable(ctx context.Context, req *api.FetchRequest, resp api.FetchResponse, pr *fetchProbe, need int, fresh bool) int {
	counted := func() int {
		if fresh {
			return pr.bound
		}
		return pr.more
	}
	for i, fp := range req.Partitions {
		if counted() >= need {
			break
		}
		out := resp.Partitions[i]
		pr.hws[i] = -1
		if out.Err != nil {
			continue
		}
		t, p, err := b.topicPartition(context.Background(), fp.Topic, fp.Partition, false)
		if err != nil || t.ID != out.TopicID {
			continue
		}
		hw := out.HighWatermark
		if fresh {
			hw = p.Offsets().HighWatermark
		}
		pr.hws[i] = hw
		for pr.ends[i] < hw && pr.rooms[i] > 0 && counted() < need {
			data, err := p.ReadInto(ctx, pr.buf[:0], pr.ends[i], min(pr.rooms[i], need-counted()), hw)
			if err != nil || len(data) == 0 {
				break
			}
			pr.buf = data
			if pr.ends[i] == fp.Offset && pr.firsts[i] == 0 {
				pr.firsts[i] = firstSize(data)
			}
			n := min(len(data), pr.rooms[i])
			pr.more += n
			pr.bound += len(data)
			pr.rooms[i] -= n
			next := nextAfter(data, pr.ends[i])
			if next <= pr.ends[i] {
				break
			}
			pr.ends[i] = next
		}
	}
	return pr.more
}

// nextAfter returns the offset after the last whole batch in data, or def
// when it holds none.
func nextAfter(data []byte, def int64) int64 {
	next := def
	for bt, err := range record.Batches(data) {
		if err != nil {
			break
		}
		next = bt.NextOffset()
	}
	return next
}

// ChecksCRCs reports true: every batch Fetch returns was CRC-checked (when
// its segment read it from a file, or, in memory, when it was appended:
// see segment.Read), and it reaches a consumer in this process without
// crossing a network. It makes the broker a consumer.CRCChecker, so
// consumers do not check the CRCs again.
func (b *Broker) ChecksCRCs() bool { return true }
