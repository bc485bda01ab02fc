package producer

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/callstack"
	"github.com/runnel/runnel/internal/isnil"
	"github.com/runnel/runnel/record"
)

// Client is what a producer needs of a broker; *runnel.Broker satisfies
// it. Tests fake it to inject failures.
//
// Every method must return when its ctx ends, with an error. Close cancels
// the calls in flight (requests, producer id requests, and the partition
// counts that Produce calls wait for) and waits for those of its
// goroutines, and a batch's delivery deadline ends the calls made for it.
//
// The producer reads a Client's errors by Kafka's table (package api):
//
//   - A batch whose Produce fails with an error the table calls retriable
//     is sent again after a backoff, until its delivery timeout. Those are
//     api.ErrRequestTimedOut, api.ErrNotLeader, ..., and api.ForCode of the
//     other codes Kafka retries (LEADER_NOT_AVAILABLE, say, an
//     *api.UnknownCodeError); see api.IsRetriable.
//   - One that fails with an error the table calls not retriable, or does
//     not know, fails at once, as a Kafka producer fails a batch answered
//     UNKNOWN_SERVER_ERROR.
//
// So a Client that loses its connection for a while, or times out a
// request itself, should return api.ErrRequestTimedOut (wrapping its own
// error if it likes), not an error of its own. It should never return one
// matching context.Canceled or context.DeadlineExceeded unless its ctx
// ended. A closed Client returns an error matching api.ErrBrokerClosed,
// which is not retried, whatever else it matches.
//
// The producer calls Produce (an [AsyncClient]'s ProduceAsync) and
// InitProducerID on its own goroutines, where its promises run. Code a
// method calls back there (a runnel.Broker's Logger handler, on a line of
// the request) may call the producer only as a promise may (see
// [Producer]): TryProduce or Close, not ProduceSync or Flush, which may
// wait for the goroutine that runs it.
type Client interface {
	// Partitions returns the number of partitions of topic.
	Partitions(ctx context.Context, topic string) (int, error)
	// InitProducerID returns a new idempotent producer id and its epoch.
	InitProducerID(ctx context.Context) (id int64, epoch int16, err error)
	// Produce appends req.Batches to a partition. It may modify
	// req.Batches (the broker assigns offsets in place) and must keep
	// neither req nor its bytes after returning: the producer reuses
	// them. It must return when ctx ends: Close cancels the requests in
	// flight.
	Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error)
}

// AsyncClient is a Client that acknowledges a produce request in two
// steps, so that a partition can have several requests in flight (see
// [MaxInFlight]). *runnel.Broker implements it.
//
// ProduceAsync returns once the broker has appended req.Batches, with:
//
//   - Produce's response, or the error Produce would have returned before
//     the append;
//   - and the acknowledgement still to come (nil when there is none to wait
//     for).
//
// Like Produce it may modify req.Batches and keeps neither req nor its
// bytes after returning.
//
// A Client that wraps *runnel.Broker by embedding it and overrides Produce
// must override ProduceAsync too. The producer calls ProduceAsync on a
// Client that has it (MaxInFlight above 1), so the embedded broker's would
// bypass the wrapper. In tests, runneltest.Faults is such a wrapper, with
// rules that fail or hold the requests they match.
type AsyncClient interface {
	Client
	ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error)
}

// HealthClient is a Client that also tells which of a topic's partitions
// refuse appends, as Kafka's metadata tells the partitions that have no
// leader (an offline log directory). *runnel.Broker implements it: a
// partition whose log a failed write or fsync fenced refuses appends,
// KAFKA_STORAGE_ERROR, until the broker is opened again.
//
// With one, the records that the partitioner lets go anywhere go to the
// partitions that take appends. With the default partitioner those are the
// records without a key (see [ConsistentPartitioner]). Kafka's Java
// producer, too, sends them to the available partitions, and franz-go's to
// the writable ones.
//
// The producer asks it only about a topic whose partitioner can use the
// answer: a ConsistentPartitioner, not [ManualPartitioner] nor a
// [PartitionerFunc]. It asks:
//
//   - when it first writes to the topic, by the deadline of the look-up of
//     its partition count;
//   - at each refresh of that count ([MetadataMaxAge]);
//   - without holding up a record, when a batch is refused by a partition
//     it took for writable with KAFKA_STORAGE_ERROR. It takes that
//     partition for refusing at once, until the answer.
//   - without holding up a record, when a batch is refused by a partition
//     it took for writable with an error that says the partition's leader
//     moved or is not known
//     (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, FENCED_LEADER_EPOCH:
//     Kafka's producers refresh their metadata on them), which runnel's
//     broker never gives.
//
// A look-up a refusal calls for begins no sooner than [RetryBackoff] after
// the last one began, as Kafka's producer waits its retry backoff between
// two metadata requests.
//
// A partition it took for refusing is taken for writable again at the next
// answer that does not list it, or as soon as a batch sent to it is
// appended and acknowledged (a keyed record's, say). An error of the call
// changes nothing.
type HealthClient interface {
	Client
	// UnwritablePartitions returns the partitions of topic that refuse
	// appends now (ids from 0 to the partition count less one; others
	// are ignored), in ascending order; nil when none does.
	UnwritablePartitions(ctx context.Context, topic string) ([]int32, error)
}

// Producer sends records to a broker in batches, one RecordBatch v2 per
// partition and request. All its methods are safe for concurrent use.
//
// Records are buffered per partition into a batch. A partition sends one
// request at a time, and records produced meanwhile form the next batch.
// With an [AsyncClient] a request leaves as soon as the last one is
// appended, while up to [MaxInFlight] of them wait for their
// acknowledgement (an fsync, say). The exception is a request sent alone,
// with no record waiting behind it: the partition's goroutine waits for
// its acknowledgement itself (see MaxInFlight).
//
// Each partition that has records has one goroutine sending them and,
// while requests wait for their acknowledgement, a second one completing
// them. The goroutine starts when the partition's first record arrives and
// ends after a second without any; Close stops them all.
//
// Promises run on those goroutines, one partition's in the order its
// records were produced, after a delivered record's Partition, Offset and
// TimestampType (and Timestamp, for a topic with LogAppendTime) were set.
// Two partitions' promises may run at the same time (Kafka's Java producer
// runs every callback on its one I/O thread): what the promises of several
// partitions share needs a lock.
//
// A promise must not block for long, and must not call:
//
//   - Produce or ProduceSync, which may wait for buffer space, or records,
//     that only finished promises free. A ProduceSync whose record goes to
//     the partition whose goroutine runs the promise waits for itself,
//     until its ctx ends or Close (see ProduceSync). Use TryProduce there.
//   - Flush, which waits for the promises to finish (see Flush).
//
// A promise may call Close, which then returns without waiting for the
// producer's goroutines (see Close).
//
// A record must not be modified until its promise has run.
//
// A record that fails before it reaches a partition has its promise run,
// on the caller's goroutine, before Produce returns. Those failures are
// ErrNilRecord, ErrNoTopic, ErrInvalidTimestamp, ErrRecordTooLarge for
// BatchMaxBytes, the broker's error for the topic's partition count
// ([api.ErrUnknownTopicOrPartition], [api.ErrInvalidTopic], ...),
// ErrInvalidPartition, ErrMaxBuffered, ctx's error and ErrClosed.
//
// A record's ctx governs it until its batch is first sent (see Produce).
//
// A promise that panics on the producer's goroutines crashes the program,
// as a panic on any goroutine does: the producer does not recover it.
// Kafka's Java producer logs a callback's exception and goes on. Recovered
// here, the panic would hide a bug and leave the promise's own work half
// done, unknown to its caller. Recover in the promise if that is what you
// want.
//
// A promise (or a Client's method, or a Logger's handler, run on those
// goroutines) that ends the goroutine instead crashes the program too,
// with a panic that says so. That is runtime.Goexit: t.FailNow, t.Fatal or
// a require assertion in a test. The partition's goroutine gone, its later
// records would never be sent nor failed.
//
// Retriable errors ([api.IsRetriable]) are retried with backoff until the
// batch's DeliveryTimeout. Later batches of the partition wait, so order
// is kept. An error that matches api.ErrBrokerClosed (a closed Client) is
// not retried, whatever else it matches.
//
// A batch the broker refuses as too large or invalid is split in halves
// and sent again, so that only the records at fault fail. Those refusals
// are ErrRecordTooLarge, log.ErrInvalidRecord, and api.ErrInvalidTimestamp
// (INVALID_TIMESTAMP by its code). The exception is a batch an earlier
// attempt of which may have been appended (its answer lost, say): the
// halves would write its records again, so the whole batch fails, with
// ErrMaybeWritten beside the refusal.
//
// A deleted topic: a batch the broker refuses for an unknown topic or
// partition (api.ErrUnknownTopicOrPartition, which runnel.ErrUnknownTopic
// is) makes the producer ask the broker for the topic's partition count
// at once.
//
// If the answer confirms it (the topic is unknown, or has no such
// partition: it was created again with fewer), the batch and every record
// buffered for that partition before the look-up was sent fail with the
// broker's error, without waiting for the delivery timeout.
//
// A record buffered since (while the look-up was under way, or by a
// promise of theirs once the topic is found created again) is sent. It is
// delivered if the topic exists by then (it may have been created again
// between the broker's answer and the producer's reading of it), or
// refused and failed in turn.
//
// Records produced to the topic afterwards fail at once, before Produce
// returns, until the topic exists again (the producer asks the broker for
// each, as for a topic it never knew).
//
// Any other answer is transient, and the batch is retried: the topic has
// the partition (a broker that has not caught up), or an error. One
// look-up rather than kgo's count of failures (UnknownTopicRetries, 4):
// the producer asks the broker it produces to, whose answer is
// authoritative.
//
// A topic deleted and created again between two of the producer's
// batches, with at least the partitions it wrote to, refuses none of
// them, so the producer does not see it. It goes on with the count it
// knew until its next look-up (MetadataMaxAge). A topic created again
// with more partitions gets its keyed records where that count puts them,
// as after CreatePartitions.
//
// Idempotence (the default, with AcksAll): the producer takes a producer
// id from the broker before its first batch and numbers each partition's
// records. A retried batch is sent again byte for byte with its numbers,
// so the broker answers a batch it already has with its original offsets
// instead of appending it twice.
//
// When the broker refuses a partition's sequence numbers
// ([ErrOutOfOrderSequence]: a gap before the batch), it lost records it
// acknowledged (a crash under a lax fsync policy, say), or never had them.
// The producer takes a new producer id and sends the batch again under it,
// once the batches before it are done, and the records behind it follow.
// Nothing fails, as franz-go (unless StopProducerOnDataLossDetected) and
// Kafka's idempotent producer (which bumps its epoch, KIP-360) retry it.
// The records the broker lost stay lost, and the producer logs the
// refusal (Warn).
//
// If an earlier attempt of that batch may have been appended (answered
// with a retriable error after the append), the batch fails with
// ErrOutOfOrderSequence (and ErrMaybeWritten) instead, alone, so that it
// is never there twice.
//
// When the broker reports that a newer epoch of the producer id exists
// ([ErrProducerFenced]), the batch and the records buffered for that
// partition fail with that error, and the producer keeps its id. Another
// producer has taken its place, and the broker will refuse its later
// batches too: close it (from a promise too: see Close).
//
// When the broker no longer knows the producer id
// (api.ErrUnknownProducerID: retention removed its state, say), the
// producer takes a new id and sends the batch again under it, as Kafka's
// producer bumps its epoch (KIP-360). If an earlier attempt of the batch
// may have been appended, the batch fails with that error instead.
//
// A batch that fails after the broker may have appended it (a delivery
// timeout after an unanswered request) also makes the producer take a new
// id, so that its sequence numbers are never reused for other records.
// When an earlier attempt of a batch that fails may have been appended,
// its error matches ErrMaybeWritten too, whatever the last attempt's
// error says (a refusal, ErrProducerFenced or ErrRecordTooLarge say, of
// the attempt after).
//
// Memory: what a producer holds follows what it buffers, not the number
// of partitions it writes to. See MaxBufferedBytes and MaxBufferedRecords,
// and the records' own memory, which the producer references until their
// promises have run.
//
// A partition keeps the buffers it encodes batches in only while it is
// sending. It hands them back, to a pool the partitions share, as soon as
// it waits for records, a batch's linger or its requests in flight.
//
// A partition's goroutine ends once the partition has had nothing to send
// for a second. It takes about 5 KiB: its stack and timers. With an
// AsyncClient, while requests wait for their acknowledgement, the
// goroutine that completes them takes about 5 KiB more.
//
// What stays, for the producer's lifetime, is its state of each partition
// of every topic it has written to, written to or not. That is about 500
// bytes a partition, 600 with an AsyncClient such as the broker (its
// sequence numbers, which idempotence needs, its queue, and its run of
// failed batches for the log), up to about 1 KiB once written to. So one
// record to a topic of 100,000 partitions costs 51 MB (63 MB through an
// AsyncClient). The state stays also once the topic is deleted, as
// franz-go keeps its topics' state (until PurgeTopicsFromClient) rather
// than guess that a partition will not be written again. A long-lived
// producer that writes to ever new topics (a topic per tenant or per day,
// say) should be closed and replaced now and then.
//
// A Producer is made by [New]. A zero Producer (one not made by New) is
// closed: Produce, TryProduce and ProduceSync give ErrClosed, Flush
// returns it, and Close returns nil.
type Producer struct {
	client Client
	health HealthClient // client, if it is one; else nil
	cfg    config

	ctx       context.Context // of requests; cancelled by Close
	cancel    context.CancelFunc
	done      chan struct{} // closed by Close
	closed    atomic.Bool
	closeOnce sync.Once
	goMu      sync.Mutex // orders goroutine starts with Close
	wg        sync.WaitGroup

	bufRecords atomic.Int64
	bufBytes   atomic.Int64
	flushing   atomic.Int32
	space      spaceQueue // Produce calls waiting for buffer space
	emptied    waitSet    // Flush calls waiting for an empty buffer

	topicsMu sync.Mutex                 // held while a topic's state is made, so that a topic gets one
	topics   sync.Map                   // topic name → *topicState: stored under topicsMu, loaded without a lock (see knownTopic)
	lastTop  atomic.Pointer[topicState] // the first topic produced to, looked up before the map (most producers write one topic); set once, so producers of several topics do not write it per call

	// lookUpFailures throttles the lines of records failed because their
	// topic's partition count was not learnt by DeliveryTimeout (see
	// logLookUpFailure): a run per topic name, until a look-up answers
	// or, stale, a sweep drops it (see logLookUpFailureAt).
	lookUpMu       sync.Mutex
	lookUpFailures map[string]*lookUpRun // guarded by lookUpMu
	lookUpSweep    int                   // guarded by lookUpMu: the runs kept before the stale are dropped (see logLookUpFailureAt)

	pidMu   sync.Mutex
	pid     int64
	epoch   int16
	pidGen  uint64 // counts the ids taken; 0: none yet
	pidOK   bool
	pidWait chan struct{} // closed when the InitProducerID under way ends; nil if none is

	batches  sync.Pool // of *batch
	builders sync.Pool // of *record.Builder, for the partitions sending (with a codec, sealing)
	comps    sync.Pool // of *[]byte, with a codec: a sending partition's batch compressed
	clock    wallClock // stamps records without a Timestamp

	idleKeep atomic.Int64 // idleKeep (a time.Duration), other in tests
	start    time.Time    // New's time.Now, for monoNow

	// Tests only (export_test.go), nil otherwise: called as a Produce
	// begins to wait for buffer space, once it is sure to be woken.
	testWaiting func()
	// Tests only, nil otherwise: monoNow's clock.
	testMono func() int64
	// Tests only, nil otherwise: called by newTopic, under topicsMu, with
	// each topic's state as it stores it (Close lets go of them).
	testTopicMade func(*topicState)
}

// New returns a producer that sends records through c, configured by
// opts. It starts no goroutine and makes no request: the producer id (of
// an idempotent producer) and each topic's partition count are asked for
// when first needed.
//
// Errors: ErrInvalidOption for a nil c (a nil *runnel.Broker too) or an
// option out of range.
func New(c Client, opts ...Opt) (*Producer, error) {
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
	p := &Producer{
		client: c,
		cfg:    cfg,
		done:   make(chan struct{}),
	}
	p.health, _ = c.(HealthClient)
	p.idleKeep.Store(int64(idleKeep))
	p.start = time.Now()
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.batches.New = func() any { return new(batch) }
	p.builders.New = func() any { return new(record.Builder) }
	p.comps.New = func() any { return new([]byte) }
	return p, nil
}

func noPromise(*record.Record, error) {}

// Produce buffers r for its topic (or DefaultTopic) and returns. promise,
// which may be nil, runs once r is done, with r and nil or the reason it
// failed.
//
// Produce blocks only:
//
//   - while it waits for buffer space: while the buffer is full
//     ([MaxBufferedRecords], [MaxBufferedBytes]), or other Produce calls
//     wait for space before it. They get it in the order they began to
//     wait.
//   - while it asks the broker for the partition count of a topic it has
//     not written to yet, or has found deleted (see [Producer]), or whose
//     count grew MetadataMaxAge old while the topic was idle (see
//     [MetadataMaxAge]).
//   - while it asks the broker for the partition count of a topic for
//     which r's partitioner chose a partition past the count the producer
//     knows.
//
// In that last case, partitions may have been added since the producer
// last looked (see MetadataMaxAge), and Kafka's Java producer too
// refreshes its metadata before it fails such a record. If the topic has
// more partitions now, the partitioner is asked again; else r fails with
// [ErrInvalidPartition]. If Close or the end of ctx cuts the look-up
// short, as any wait of Produce, r fails with ErrClosed or ctx's error
// instead.
//
// Any of these look-ups that fails with an error Kafka's table calls
// retriable (a request timed out, say; not an unknown topic, which fails
// r at once) is retried with [RetryBackoff]'s backoff, as Kafka's producer
// waits for its metadata. It is retried until ctx ends, Close, or
// DeliveryTimeout has passed ([ErrDeliveryTimeout]). TryProduce does not
// wait for that either, and fails r with the first answer's error.
//
// The look-up of a partition past the count is the exception. One that
// fails otherwise than by Close, ctx or DeliveryTimeout (TryProduce's
// first retriable answer among them, or a topic found unknown) leaves the
// count the producer knows as it was, and r fails with
// ErrInvalidPartition.
//
// A look-up the Client does not answer is cut short at [DeliveryTimeout]
// too (as Kafka's send waits no longer than max.block.ms), so a record
// whose ctx never ends is not held for ever. It fails with
// ErrDeliveryTimeout, not written.
//
// Produce sets an empty r.Topic to DefaultTopic and a zero r.Timestamp to
// the current time when it buffers r (after any wait for buffer space).
// It writes nothing of r before. The time is in whole milliseconds, as the
// batch carries it and as kgo stamps it, so that the record read back has
// the same Timestamp, and carries no monotonic reading. A Timestamp of the
// caller's with a part below the millisecond is truncated to the
// millisecond then, as kgo truncates it (Time.Truncate: its Location is
// kept, its monotonic reading dropped), so that it too is Equal to the
// record read back; one in whole milliseconds is left as it is. Either
// way the batch carries its UnixMilli.
//
// A record that fails before it is buffered is left as it was. Its
// promise runs before Produce returns, with ErrMaxBuffered, ctx's error,
// ErrClosed, ErrInvalidPartition or another. Produced again, it is
// stamped then.
// Its Partition (0 unless the caller set it) is then not where it went,
// since it went nowhere. ProduceSync's RecordError says UnknownPartition
// (-1), or with ManualPartitioner the record's own Partition (as Kafka's
// producer reports a record's explicit partition).
//
// A record that was buffered keeps its timestamp whatever its outcome, as
// with franz-go's kgo. Produced again after its promise got an error, it
// is sent with that first timestamp, unless the caller zeroes r.Timestamp
// first: the broker may have appended the first attempt, and a copy sent
// again should carry the same time.
//
// ctx governs r until r's batch is first sent, as with franz-go's kgo:
//
//   - If ctx is done already, the promise gets ctx's error before Produce
//     returns, and nothing is buffered.
//   - If it ends while Produce blocks, the same.
//   - If it ends while r is buffered, r is dropped from its batch before
//     the batch is sealed (given its sequence numbers) and sent. r never
//     reaches the broker, and its promise gets ctx's error in its turn: a
//     partition's promises run in produce order, so no earlier than those
//     of the records produced before it to its partition.
//
// A batch lingering for more records ([Linger]) is sent at once when one
// of its records' ctx ends. One waiting for a place among the requests in
// flight ([MaxInFlight]), or for the producer id of an idempotent
// producer, is looked at again once it has it.
//
// Once r's batch was sent, even once, ctx no longer matters: the broker
// may have appended r, and a retry must send the same records again.
//
// The promise gets an error matching context.Canceled or
// context.DeadlineExceeded only from r's ctx, so such an error means that
// r was not written. The producer's own deadlines and Close give errors
// that match neither: ErrDeliveryTimeout and ErrClosed.
//
// A ctx that can never end (context.Background) costs nothing. A nil ctx
// is taken for context.Background (as by ProduceSync and Flush), though
// package context asks for none.
//
// A ctx of the application's own type runs its methods (Done, Err, Value,
// AfterFunc) where context.AfterFunc and the producer call them. If one
// panics on Produce's goroutine, the panic reaches Produce's caller as a
// partitioner's does (see [TopicPartitioner]): r is not buffered, left
// as it was, its promise not run; the producer goes on. On the producer's
// goroutines (a lingering batch looks at its records' ctxs), it crashes
// the program, as a promise's panic there does.
//
// Errors given to promise:
//
//   - those listed on Producer;
//   - [ErrNilRecord], [ErrInvalidTimestamp], ctx's error,
//     ErrDeliveryTimeout, [ErrOutOfOrderSequence], [ErrProducerFenced];
//   - [ErrMaybeWritten], beside another;
//   - [ErrInvalidOption]: a partitioner whose ForTopic returned nil;
//   - the broker's errors for the record's batch.
func (p *Producer) Produce(ctx context.Context, r *record.Record, promise func(*record.Record, error)) {
	p.produce(ctx, r, promise, true, nil, nil)
}

// TryProduce is Produce, except that it never waits for space in the
// buffer.
//
// When the buffer is full, or a Produce waits for space (which TryProduce
// does not take before it), the promise gets [ErrMaxBuffered] at once,
// before TryProduce returns. ctx governs r as it does for Produce.
//
// A TryProduce that finds the buffer full does not cut short the linger
// of the batches that fill it, as a Produce waiting for space does (see
// [Linger]). So with TryProduce alone and a long Linger, records fail with
// ErrMaxBuffered until those batches leave. Call [Producer.Flush] to send
// them at once.
func (p *Producer) TryProduce(ctx context.Context, r *record.Record, promise func(*record.Record, error)) {
	p.produce(ctx, r, promise, false, nil, nil)
}

// produce is Produce and TryProduce; it reports whether r was buffered
// (false: r failed before it was partitioned, its promise has run).
// failed, if not nil, holds the topics whose partition count a record
// of the same ProduceSync could not learn within DeliveryTimeout, with
// that error: a record of such a topic fails with it at once, rather
// than wait as long again (and produce adds to it). Under pastCount and
// the topic's name, it holds the error of a look-up for a partition past
// the count the producer knew: a record for such a partition fails with
// it at once, one for a partition it knows is buffered. sp, a
// ProduceSync's (nil for Produce), collects the partition r joins.
func (p *Producer) produce(ctx context.Context, r *record.Record, promise func(*record.Record, error), block bool, failed map[string]error, sp *syncParts) (buffered bool) {
	if promise == nil {
		promise = noPromise
	}
	if ctx == nil {
		ctx = context.Background()
	}
	if r == nil {
		promise(r, ErrNilRecord)
		return false
	}
	// Nothing of r is written until it is buffered: a record that fails
	// before is left as it was (see Produce).
	topic := r.Topic
	done := ctx.Done() // nil if ctx can never end
	zeroTs := r.Timestamp.IsZero()
	switch {
	case p.closed.Load() || p.client == nil: // closed, or not made by New
		promise(r, errClosedNotSent) // never sent (see MayBeWritten)
		return false
	case done != nil && ctx.Err() != nil:
		promise(r, ctx.Err())
		return false
	case !zeroTs && (!record.MillisFit(r.Timestamp) || r.Timestamp.UnixMilli() < 0):
		// The zero Timestamp is stamped (below); another must be a Kafka
		// timestamp that is not negative (checked before UnixMilli,
		// which would wrap past an int64, to any value).
		promise(r, fmt.Errorf("%w: %v is outside Kafka's timestamps, from the Unix epoch to math.MaxInt64 ms", ErrInvalidTimestamp, r.Timestamp))
		return false
	case topic == "":
		if p.cfg.defaultTopic == "" {
			promise(r, ErrNoTopic)
			return false
		}
		topic = p.cfg.defaultTopic
	}
	body := record.BodySizeNoHeaders(r.Key, r.Value) // inlined: no call for a record without headers
	if len(r.Headers) != 0 {
		body = record.BodySize(r.Key, r.Value, r.Headers)
	}
	size := record.SizeWithDeltas(body, 0, 0) // on a 32-bit platform, saturated past any batch: never wrapped
	// Below, body < size <= BatchMaxBytes - HeaderSize <= math.MaxInt32 - 61
	// (New's check), which bounds the int32 conversions of both further on.
	// The comparison is written so as not to overflow on a 32-bit platform,
	// where HeaderSize + size could.
	if size > p.cfg.batchMaxBytes-record.HeaderSize {
		promise(r, fmt.Errorf("%w: a record of %d bytes does not fit in a batch of BatchMaxBytes %d",
			ErrRecordTooLarge, size, p.cfg.batchMaxBytes))
		return false
	}
	// Space first, then the topic's partition count: a record whose count
	// is being looked up holds buffer space, so that Flush waits for it
	// (kgo's Flush, too, counts such a record as buffered).
	if p.space.n.Load() != 0 || !p.tryReserve(int64(size)) { // reserve, its first look inlined
		if err := p.reserveQueued(ctx, int64(size), block); err != nil {
			promise(r, notSent(err))
			return false
		}
	}
	rctx := ctx
	if done == nil {
		rctx = nil // it can never end: nothing to check
	}
	pr := pending{r: r, promise: promise, size: int32(size), body: int32(body)} // both fit: see the BatchMaxBytes check
	if failed == nil || failed[topic] == nil {
		if t := p.hotTopic(topic); t != nil { // topic's answer where it is plain, without its call
			if pp := t.hot.Load(); pp != nil && r.Key == nil {
				// The hot path (see markHotLocked): it runs none of the
				// application's code (addHot neither starts the
				// partition's goroutine, which could fail records, nor
				// calls a partitioner), and needs no deferred undo. r is
				// stamped as placeRecord stamps it (see giveBack.stamp),
				// before it is shared.
				noTopic := r.Topic == ""
				if noTopic {
					r.Topic = topic
				}
				var oldTs time.Time // zero, but maybe with a Location
				setTs := zeroTs || subMilli(r.Timestamp)
				if zeroTs {
					oldTs, r.Timestamp = r.Timestamp, p.clock.now()
				} else if setTs {
					oldTs, r.Timestamp = r.Timestamp, truncMilli(r.Timestamp)
				}
				if pp.addHot(&pr, rctx, done, false, sp) {
					return true // no trickle starts there (see addHot)
				}
				if rctx != nil && p.cfg.linger > 0 {
					// Maybe declined for its ctx, which the batch would
					// have to watch anew (see addHot): placeRecord tries
					// again, watching it, with its deferred undo should
					// the ctx's AfterFunc method panic. r stays stamped:
					// placeRecord's undo sets back what was stamped here.
					return p.placeRecord(ctx, rctx, pr, t, topic, int64(size), block, failed, sp,
						&stamped{oldTs: oldTs, topic: noTopic, ts: setTs})
				}
				// Declined: placed under the topic's lock, which finds
				// the same, and stamped there anew. placeRecord does not
				// try again (tryHot false): a batch is marked hot only
				// under that lock, so a second try would find what place
				// finds under it.
				if noTopic {
					r.Topic = ""
				}
				if setTs {
					r.Timestamp = oldTs
				}
			}
			return p.placeRecord(ctx, rctx, pr, t, topic, int64(size), block, failed, sp, nil)
		}
	}
	return p.placeRecord(ctx, rctx, pr, nil, topic, int64(size), block, failed, sp, nil)
}

// stamped is what produce's hot path stamped on a record (see
// giveBack.stamp) that addHot declined, maybe for its ctx, and that
// placeRecord tries again on the hot path, watching its ctx.
type stamped struct {
	oldTs     time.Time // r.Timestamp before, if ts
	topic, ts bool      // r.Topic, r.Timestamp were stamped
}

// placeRecord is produce for a record that holds its buffer space (size
// bytes), past the hot path: it finds the record's topic (unless t is
// that topic's state, from hotTopic: then produce tried the hot path
// already, and place tries it again only for a record produce stamped
// there, st not nil, whose ctx addHot may have declined to watch) and
// places it there (see topicState.place). It reports whether the record
// was buffered; if not, its promise has run.
//
// It has a frame of its own, so that produce's hot path sets up neither
// its deferred undo nor its state: some 25 instructions a record less
// (callgrind), with the stamp inlined there.
func (p *Producer) placeRecord(ctx, rctx context.Context, pr pending, t *topicState, topic string, size int64, block bool, failed map[string]error, sp *syncParts, st *stamped) bool {
	// From here r holds buffer space until it is buffered (its batch's
	// then) or fails. Should the application's code that runs on this
	// goroutine panic meanwhile — a Partitioner's ForTopic, Partition or
	// OnNewBatch, a Client's Partitions, a failed record's promise —, r is
	// given back as it was, with its space, and the panic goes on to the
	// caller: g.run, deferred.
	// The topic's lock, too, should the partitioner panic under it, is
	// released there (see place), before r is given back.
	// A method of a struct on the stack: the defer keeps its one pointer,
	// where a closure over the same variables was built for every record,
	// and loaded them all again to run. The struct keeps what it gives
	// back only once it was changed.
	r, promise := pr.r, pr.promise
	var g giveBack
	g.p, g.r, g.size, g.held = p, r, size, true
	tryHot := t == nil // for place: produce has not tried the hot path
	if st != nil {
		g.oldTs, g.topicSet, g.tsSet = st.oldTs, st.topic, st.ts
		tryHot = true // watching the ctx this time
	}
	defer g.run()
	var err error
	if t == nil {
		if failed != nil && failed[topic] != nil {
			err = failed[topic]
		} else if t, err = p.topic(ctx, topic, block); err != nil && failed != nil && errors.Is(err, ErrDeliveryTimeout) {
			failed[topic] = err
		}
		if err != nil {
			// The promise first, then the deferred release: the record
			// is done (for Flush) once it ran. Never sent (see
			// MayBeWritten).
			promise(r, notSent(err))
			return false
		}
	}
	g.t = t
	g.stamp(topic, &p.clock)
	var yield bool
	yield, err = t.place(pr, rctx, sp, tryHot, &g.locked)
	if re, ok := err.(*rangeError); ok && re.chosen >= 0 && !re.writable {
		// A partition past the count the producer knows: partitions may
		// have been added since its last look (MetadataMaxAge). Ask the
		// broker, as Kafka's producer refreshes its metadata for a record
		// whose partition is past the count it has, and choose again if
		// the topic has more. (place returns choose's error as it is: a
		// type assertion, not errors.As, whose target would be allocated
		// for every record.)
		// A ProduceSync's record after one whose look-up DeliveryTimeout
		// ended fails with its error at once (see ProduceSync), under a
		// key no topic name has.
		if ferr := failed[pastCount+topic]; ferr != nil {
			err = ferr
		} else {
			n, rerr := t.lookUpNow(ctx, block)
			switch {
			case rerr == nil && n > re.n:
				yield, err = t.place(pr, rctx, sp, false, &g.locked) // not the hot path's: only a partitioner of the application's chooses past the count
			case rerr == nil:
			case errors.Is(rerr, ErrClosed), errors.Is(rerr, ErrDeliveryTimeout):
				// Close, or DeliveryTimeout, ended the wait for the
				// answer (see Close and Produce): the producer never
				// learnt whether the partition exists.
				err = rerr
				if failed != nil && errors.Is(rerr, ErrDeliveryTimeout) {
					failed[pastCount+topic] = rerr
				}
			case ctx.Err() != nil:
				err = ctx.Err() // as for any wait of Produce's
			}
		}
	}
	if err != nil {
		// Not buffered (ErrInvalidPartition, ErrClosed): r is not shared,
		// and is given back as it was.
		g.giveBack()
		promise(r, notSent(err)) // then the deferred release
		return false
	}
	g.held = false // the batch's now
	if yield {
		// The record starts a trickle (see addRecord): yield, so that the
		// partition's goroutine runs on this thread at once. Not in
		// place, under t.mu: the goroutine's whole request would run
		// with the topic locked against every other Produce to it.
		runtime.Gosched()
	}
	return true
}

// giveBack is placeRecord's deferred undo: while held, the record still
// holds its buffer space, which run releases, having given the record
// back as it was (see giveBack), should the application's code panic on
// the caller's goroutine (see produce). While locked, place holds t.mu,
// which run releases first.
type giveBack struct {
	p        *Producer
	r        *record.Record
	t        *topicState
	size     int64
	oldTs    time.Time // r.Timestamp before tsSet
	held     bool
	locked   bool
	topicSet bool // r.Topic was empty, and produce set it
	tsSet    bool // r.Timestamp (oldTs) was zero, and produce stamped it, or produce truncated it
}

func (g *giveBack) run() {
	if g.locked {
		g.t.mu.Unlock()
	}
	if g.held {
		g.giveBack()
		g.p.release(1, g.size)
	}
}

// stamp sets the record's topic and time, if it has none, and truncates
// its time to the millisecond (see Produce), before it is partitioned: the
// partitioner sees them, and its batch sizes it with its timestamp. It
// notes what it set, for giveBack.
func (g *giveBack) stamp(topic string, c *wallClock) {
	r := g.r
	if r.Topic == "" {
		r.Topic, g.topicSet = topic, true
	}
	if r.Timestamp.IsZero() {
		g.oldTs, g.tsSet = r.Timestamp, true // zero, but maybe with a Location
		r.Timestamp = c.now()
	} else if subMilli(r.Timestamp) {
		g.oldTs, g.tsSet = r.Timestamp, true
		r.Timestamp = truncMilli(r.Timestamp)
	}
}

// subMilli reports whether t has a part below the millisecond, which
// Produce truncates: kgo truncates every record's Timestamp, and the batch
// carries milliseconds.
func subMilli(t time.Time) bool {
	return t.Nanosecond()%int(time.Millisecond) != 0
}

// truncMilli is t.Truncate(time.Millisecond), the same Time: t's second
// and its nanoseconds less their part below the millisecond, in t's
// Location, without a monotonic reading. Truncate's division of the time
// since year 1 cost some 180 instructions a record (callgrind), and
// Round(0).Add of the remainder 140.
func truncMilli(t time.Time) time.Time {
	ns := t.Nanosecond()
	return time.Unix(t.Unix(), int64(ns-ns%int(time.Millisecond))).In(t.Location())
}

// giveBack sets back what produce set of the record: its Topic and
// Timestamp.
func (g *giveBack) giveBack() {
	if g.topicSet {
		g.r.Topic, g.topicSet = "", false
	}
	if g.tsSet {
		g.r.Timestamp, g.tsSet = g.oldTs, false
	}
}

// pastCount prefixes a topic's name in produce's failed map for the look-up
// of a partition past the count the producer knew; no topic's name
// holds it.
const pastCount = "\x00"

// ProduceSync produces recs, each as Produce does with ctx, and waits for
// the outcome of every one.
//
// It returns nil if all were written, each with its Partition and Offset
// set. Otherwise it returns the errors.Join of a [*RecordError] per failed
// record, with the reason Produce's promise would get and the partition
// the record went to. That partition is [UnknownPartition] if the record
// failed before it was partitioned, unless [ManualPartitioner] gave it its
// own (see RecordError). [RecordErrors] lists them. Its message has a
// line per failed record (5,000 failed records make some 380 KB), where
// kgo's FirstErr gives one: to log a large call's failure, log a count and
// RecordErrors(err)[0]. Called with no records, it returns nil, or
// [ErrClosed] if the producer is closed.
//
// ctx governs each record until its batch is first sent (see Produce). A
// record that fails with ctx's error was not written. One that was sent
// is waited for even after ctx ended: until it is written or fails, at
// the latest at its DeliveryTimeout or Close. So a nil error means every
// record was written, and errors.Is(err, ctx.Err()) means that at least
// one was not.
//
// Its records do not wait for [Linger]. Once it has buffered them all, the
// open batch of each partition they went to is sent as soon as its
// partition can send it, with the records before them and those that join
// it meanwhile. kgo's ProduceSync, too, un-lingers the partitions it
// produces to.
//
// Each *RecordError says what became of its record, as the outcome of a
// send does with Kafka's Java producer. The record was never sent, so not
// written, when:
//
//   - its error matches context.Canceled or context.DeadlineExceeded: its
//     ctx's, never the producer's own.
//   - its Partition is UnknownPartition, whatever the error: it failed
//     before it was partitioned. An ErrDeliveryTimeout there says its
//     topic's partition count could not be learned, and the records of
//     that topic after it in the same call fail with it at once. If it
//     came from a look-up again for a partition past the count the
//     producer knew, only those for such a partition do.
//   - with ManualPartitioner, whose RecordError says the record's own
//     partition even then, it failed before it was buffered, whatever the
//     error ([MayBeWritten] tells them apart).
//
// The record may have been written when its error is:
//
//   - [ErrDeliveryTimeout] or ErrClosed otherwise (if a request that held
//     it was sent and not answered: Kafka's TimeoutException);
//   - log.ErrLogFenced or api.ErrBrokerClosed: the broker may have
//     appended it and then failed to fsync it;
//   - ErrOutOfOrderSequence, given only to a batch an earlier attempt of
//     which may have been appended (see Producer);
//   - api.ErrNotLeader, which Kafka's broker answers after an append too,
//     to an acks=all request waiting when the partition's leadership
//     moves;
//   - an error of a Client of your own that the api table does not know (a
//     network error, say);
//   - any error that matches [ErrMaybeWritten], whatever else it matches.
//
// The record was not written when its error is one of the broker's
// refusals (ErrRecordTooLarge, log.ErrInvalidRecord, ErrProducerFenced,
// api.ErrUnknownTopicOrPartition, ...) without ErrMaybeWritten, or one of
// the errors before a record is buffered (ErrMaxBuffered, ErrNoTopic,
// ...). A batch refused after an earlier attempt of it may have been
// appended, its answer lost, fails with the refusal and ErrMaybeWritten.
// So does one appended whose acknowledgement failed, whatever the error.
//
// A caller that produces a record again after a "may have been written"
// produces it twice if it was. Idempotence covers the producer's own
// retries, not a record produced again: deduplicate by a key of your own.
//
// The records of one call are not written all or nothing, nor next to
// each other: runnel has no transactions, and each record goes as Produce
// sends it.
//
//   - A record the broker refuses alone (ErrRecordTooLarge, say) fails
//     alone, the records before and after it in its partition written.
//   - A ctx that ends may fail the records not yet sent while those of
//     batches already sent are written.
//   - A partition's records may go in several batches, with records of
//     other calls (from other goroutines) between them.
//
// Records that must be written together, or not at all, such as the
// events of one command in an event store, go in one record: a value that
// holds them all, within BatchMaxBytes and the topic's MaxMessageBytes. A
// record is written whole or not at all.
//
// Called from a promise, which Producer forbids, ProduceSync may wait for
// a record that only the goroutine running the promise would send or
// fail. So it may from a Client's method: any code on a producer's
// goroutine. The end of ctx or Close then ends the wait. ProduceSync then
// returns the RecordErrors of the records that failed so far and, for the
// rest, an error matching ErrMaybeWritten: the producer may still deliver
// them, their outcome no longer reported. For Close it returns ErrClosed
// too. It does not return ctx's error, which would say that they were not
// written. (Only from a promise: elsewhere ProduceSync waits for every
// outcome, as above.)
func (p *Producer) ProduceSync(ctx context.Context, recs ...*record.Record) error {
	if len(recs) == 0 {
		if p.closed.Load() || p.client == nil {
			return ErrClosed // as with records, whose errors match it
		}
		return nil
	}
	s := &syncWait{done: make(chan struct{})}
	s.left.Store(int64(len(recs)))
	var failed map[string]error // see produce
	if len(recs) > 1 {
		failed = map[string]error{}
	}
	var sp syncParts
	// The method value once: made in the loop, it was a closure allocated
	// for every record (it escapes into the record's batch).
	promise := s.promise
	for _, r := range recs {
		if !p.produce(ctx, r, promise, true, failed, &sp) {
			s.unsent(r, !p.explicitPartition(r))
		}
	}
	sp.unlinger()
	var ctxDone <-chan struct{}
	if ctx != nil {
		ctxDone = ctx.Done()
	}
	select {
	case <-s.done:
		return s.err()
	case <-p.done: // nil for a zero Producer, whose records failed at once
	case <-ctxDone:
	}
	// Close began, or ctx ended: a record that was sent is still waited
	// for (see above) — unless the call comes from a promise, which the
	// docs forbid (see Producer): its records may have gone to the
	// partition whose goroutine runs the promise, and waits here, so that
	// nobody would ever send or fail them. It then returns rather than
	// wait for ever.
	if onProducerGoroutine() {
		select {
		case <-s.done:
		default:
			return s.gaveUp(p.closed.Load())
		}
	}
	<-s.done
	return s.err()
}

// explicitPartition reports whether r was given its partition by the
// caller: a ManualPartitioner's record with a Partition of 0 or more.
// Kafka's producer reports such a record's partition in the metadata of
// its failure, even one before it was partitioned
// (AppendCallbacks.topicPartition), and ProduceSync's RecordError does.
func (p *Producer) explicitPartition(r *record.Record) bool {
	_, manual := p.cfg.partitioner.(manual)
	return manual && r != nil && r.Partition >= 0
}

// syncWait collects the outcomes of one ProduceSync.
type syncWait struct {
	left atomic.Int64
	done chan struct{}
	mu   sync.Mutex
	errs []error
}

func (s *syncWait) promise(r *record.Record, err error) {
	if err != nil {
		s.mu.Lock()
		re := &RecordError{Record: r, Err: err, Partition: UnknownPartition}
		if r != nil {
			re.Partition = r.Partition
		}
		s.errs = append(s.errs, re)
		s.mu.Unlock()
	}
	if s.left.Add(-1) == 0 {
		close(s.done)
	}
}

// unsent marks the RecordError of r, which failed before it was
// partitioned (its promise has run), as of a record never sent, and,
// with unpartitioned (r's partition is not the caller's own: see
// explicitPartition), as of no partition. ProduceSync's goroutine calls
// it before it reads errs.
func (s *syncWait) unsent(r *record.Record, unpartitioned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.errs) - 1; i >= 0; i-- {
		if re := s.errs[i].(*RecordError); re.Record == r {
			re.unsent = true
			if unpartitioned {
				re.Partition = UnknownPartition
			}
			return
		}
	}
}

// gaveUp is the error of a ProduceSync called from a promise that Close
// or the end of its ctx ended before all its records were done: those
// that failed so far, and for the rest ErrMaybeWritten, with ErrClosed
// if Close ended it: the producer may still deliver them (their promise,
// ProduceSync's, no longer reports them).
func (s *syncWait) gaveUp(closed bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	why := "the end of its ctx"
	if closed {
		why = "Close"
	}
	err := fmt.Errorf("%w: ProduceSync, called from a promise, ended by %s with %d of its records not done",
		ErrMaybeWritten, why, s.left.Load())
	if closed {
		err = fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return errors.Join(append(append([]error(nil), s.errs...), err)...)
}

func (s *syncWait) err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.errs...)
}

// Flush sends every buffered batch at once, lingering no more, and waits
// until every record produced before it returns is done and its promise
// has run. That covers the records:
//
//   - buffered when it is called;
//   - produced while it waits;
//   - of Produce calls that wait for buffer space meanwhile (as kgo's
//     Flush waits for the blocked ones);
//   - of Produce calls that ask the broker for their topic's partition
//     count.
//
// Under a steady stream of Produce calls from other goroutines it may so
// wait as long as the stream lasts: bound it with ctx. kgo's Flush does
// too; Java's flush waits only for the records sent before it.
//
// ctx bounds only Flush's wait, not the records: they are governed by
// the ctx they were produced with.
//
// A promise must not call Flush: Flush would wait for the promise's own
// batch, which is done only once its promises have returned, until ctx
// ends or Close begins.
//
// Errors:
//
//   - ctx's error if it ends first. The records stay buffered or in
//     flight, and are delivered or fail later, each with its promise.
//   - [ErrClosed] if the producer is or gets closed. Flush returns as Close
//     begins, before the records Close fails have their promises run.
func (p *Producer) Flush(ctx context.Context) error {
	if p.closed.Load() || p.client == nil {
		return ErrClosed
	}
	if ctx == nil {
		ctx = context.Background() // as documented (see Producer)
	}
	p.flushing.Add(1)
	defer p.flushing.Add(-1)
	p.wakeAll()
	for {
		if p.drained() {
			break
		}
		ch := p.emptied.wait()
		if p.drained() {
			p.emptied.leave()
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			p.emptied.leave()
			return ctx.Err()
		case <-p.done:
			p.emptied.leave()
			return ErrClosed
		}
		p.emptied.leave()
	}
	if p.closed.Load() {
		return ErrClosed
	}
	return nil
}

// BufferedRecords returns the number of records that take buffer space:
// produced, and not yet done. It is an atomic load, cheap enough for a
// gauge read every second.
//
// A batch frees its space once all its promises have returned, so a record
// whose own promise ran may still be counted for a moment. After Flush
// returns nil it is not, nor after [Producer.Close] returns (a Close that
// waits for the producer's goroutines: not one called from a promise),
// whatever the records' fate.
//
// The exception is the records of Produce calls under way as Close began
// (one that waited for its topic's partition count, which Close ends, say:
// see Close). Each holds its space, on its caller's goroutine, until that
// Produce returns, maybe after Close has.
func (p *Producer) BufferedRecords() int64 { return p.bufRecords.Load() }

// BufferedBytes returns the bytes that the records [Producer.BufferedRecords]
// counts take of [MaxBufferedBytes]: each record's size as encoded in a
// batch, with timestamp and offset deltas of 0, without the batch's header
// (see MaxBufferedBytes). It is an atomic load.
//
// It goes back to 0 when BufferedRecords does: after Flush, after Close and
// the Produce calls under way as it began (see BufferedRecords). Read at
// the same moment, the two may disagree by the records being counted in or
// out.
//
// franz-go's BufferedProduceBytes counts keys, values and headers alone,
// and, as its BufferedProduceRecords, the records still waiting for buffer
// space, which neither count here.
func (p *Producer) BufferedBytes() int64 { return p.bufBytes.Load() }

// Close stops the producer: records not yet delivered fail with
// [ErrClosed], every promise runs, and Close returns once the producer's
// goroutines have ended. A request in flight is cancelled through its
// ctx, and its records fail with an error matching ErrClosed unless the
// Client answered it anyway. Call Flush first to deliver everything.
//
// A Produce waiting for buffer space, or for the broker's answer to its
// topic's partition count (the Client's Partitions, whose ctx Close
// cancels), returns, its promise given ErrClosed on its own goroutine,
// maybe after Close has returned.
//
// Close takes no ctx: a Client's call that cannot be cut short (a runnel
// broker's append inside a write to a disk that hangs) is waited for
// until it returns.
//
// Close is idempotent and returns nil; a second call waits for the
// goroutines too. Afterwards Produce, TryProduce, ProduceSync and Flush
// fail with ErrClosed.
//
// Once it has waited for the goroutines (a Close from a promise does
// not: see below), Close lets go of what the producer learnt of each
// topic (its partitions' state, a partitioner's own). So a closed
// producer the application still references holds no state per topic or
// partition it wrote to.
//
// Close may be called from a promise that a producer's goroutine runs, or
// from a Client's method (of this producer or of another: Close cannot
// tell them apart). A runneltest.Fault's Match is one, though it runs on
// a goroutine of its own that the method waits for. Close then closes the
// producer all the same, but returns without waiting for the goroutines,
// one of which is its caller: it ends once the promise or the method
// returns, and the other promises still run. A later Close from elsewhere
// waits for them.
func (p *Producer) Close() error {
	if p.client == nil {
		return nil // a zero Producer: nothing to stop
	}
	// The shutdown itself waits for nothing, so that a Close called
	// meanwhile from a promise (which sync.Once holds until it returns)
	// is not held behind a wait for the promise's own goroutine.
	p.closeOnce.Do(func() {
		p.goMu.Lock()
		p.closed.Store(true)
		p.goMu.Unlock()
		close(p.done)
		p.cancel()
		p.wakeAll()
		p.emptied.broadcast()
	})
	if onProducerGoroutine() {
		// One of the goroutines to wait for is this one: it ends once the
		// promise (or the Client's method) returns (see Close).
		return nil
	}
	p.wg.Wait() // no goroutine is added once closed is set (see spawn)
	p.dropTopics()
	return nil
}

// dropTopics lets go of the topics' state (their partitions, with what
// each learnt and its batches' room, a partitioner's own per topic),
// once Close has waited for the producer's goroutines: a closed producer
// that the application still references (a struct's field, a
// runneltest cleanup's) held it (some 53 KB for a producer that wrote to
// 64 partitions, as the churn hunt measured it), and nothing reads it
// again. A Produce call under way as Close began holds the state it
// found, whose partitions refuse its record (ErrClosed, under the
// partition's mu); one that finds none from now on fails as it would
// for a new topic once closed (topic, newTopic), which makes none. Only
// a Close that waited for every goroutine of the producer calls it, so
// that none is left reading the map (wakeAll is Close's own, before); a
// Close from a promise leaves it to a later Close from elsewhere.
func (p *Producer) dropTopics() {
	p.topicsMu.Lock()
	p.topics.Clear()
	p.lastTop.Store(nil)
	p.topicsMu.Unlock()
	p.lookUpMu.Lock()
	p.lookUpFailures = nil
	p.lookUpMu.Unlock()
}

// goroutineRoot is the function every goroutine of a producer starts
// with (see spawn).
const goroutineRoot = "github.com/runnel/runnel/producer.(*Producer).spawn.func1"

// onProducerGoroutine reports whether the caller runs on a goroutine of a
// producer (of this one or another: the stack does not tell which): in a
// promise, or in a Client's method, the only code of the application's
// that runs there. It walks the stack, a few microseconds: it is for the
// calls that wait for those goroutines (Close, and ProduceSync once
// Close has begun or its ctx ended), never for a record's path.
func onProducerGoroutine() bool {
	// A runneltest.Fault's Match runs for a Client's method on a
	// goroutine of its own, which the method waits for: as if on the
	// method's goroutine.
	return callstack.Within(goroutineRoot, callstack.FaultsMatch)
}

// spawn starts f on a goroutine that Close waits for, unless the
// producer is closed.
func (p *Producer) spawn(f func()) bool {
	p.goMu.Lock()
	defer p.goMu.Unlock()
	if p.closed.Load() {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		callstack.GoexitPanics(f, errGoexit, nil) // a panic goes on as it came (see Producer)
	}()
	return true
}

// errGoexit is the panic of a producer's goroutine that code it ran ended
// with runtime.Goexit: t.FailNow, t.Fatal or a require assertion in a
// promise, a Client's method or a Logger's handler of a test. Gone, the
// goroutine would leave its partition's records never sent nor failed,
// and a ProduceSync of them waiting for ever, whatever its ctx: the
// program stops instead, as for a panic there, saying why.
var errGoexit = errors.New("runnel/producer: a promise, a Client's method or a Logger's handler ended the producer's goroutine " +
	"(runtime.Goexit: t.FailNow, t.Fatal or a require assertion on a goroutine that is not the test's?); " +
	"it must return: report a test's failure there with t.Errorf, or hand it to the test's goroutine")

// wakeAll wakes every partition's goroutine (for Flush and Close).
func (p *Producer) wakeAll() {
	p.topics.Range(func(_, v any) bool {
		for _, pp := range *v.(*topicState).all.Load() {
			pp.wakeUp()
		}
		return true
	})
}

// knownPID returns the producer id to stamp on a new batch, if the
// producer has one.
func (p *Producer) knownPID() (id int64, epoch int16, gen uint64, ok bool) {
	p.pidMu.Lock()
	defer p.pidMu.Unlock()
	return p.pid, p.epoch, p.pidGen, p.pidOK
}

// producerID returns the producer id to stamp on a new batch, taking one
// from the broker if the producer has none. ctx (the batch's delivery
// deadline) bounds the wait: one InitProducerID runs at a time, and the
// partitions that need an id meanwhile wait for its answer, each until
// its own ctx ends, and ask again if it failed.
func (p *Producer) producerID(ctx context.Context) (id int64, epoch int16, gen uint64, err error) {
	for {
		p.pidMu.Lock()
		if p.pidOK {
			defer p.pidMu.Unlock()
			return p.pid, p.epoch, p.pidGen, nil
		}
		if wait := p.pidWait; wait != nil {
			p.pidMu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return 0, 0, 0, ctx.Err()
			}
		}
		wait := make(chan struct{})
		p.pidWait = wait
		p.pidMu.Unlock()
		id, epoch, err := p.client.InitProducerID(ctx)
		p.pidMu.Lock()
		p.pidWait = nil
		close(wait)
		if err != nil {
			p.pidMu.Unlock()
			return 0, 0, 0, err
		}
		p.pid, p.epoch, p.pidOK = id, epoch, true
		p.pidGen++
		gen := p.pidGen
		p.pidMu.Unlock()
		// Logged once pidMu is released: the Logger's handler holds no
		// lock of the producer's (see Logger).
		p.cfg.logger.Info("producer id", "producer_id", id, "producer_epoch", epoch)
		return id, epoch, gen, nil
	}
}

// resetProducerID makes the next batch take a new producer id, unless
// one newer than gen was taken already.
func (p *Producer) resetProducerID(gen uint64, why error) {
	p.pidMu.Lock()
	drop, id := p.pidGen == gen && p.pidOK, p.pid
	if drop {
		p.pidOK = false
	}
	p.pidMu.Unlock()
	if drop { // logged once pidMu is released (see producerID)
		p.cfg.logger.Info("dropping producer id", "producer_id", id, "err", why)
	}
}
