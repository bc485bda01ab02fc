package producer

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/isnil"
	"github.com/runnel/runnel/record"
)

// The three acknowledgement levels (Kafka's acks), for the Acks option.
const (
	// AcksNone: a record is done once its request is handed to the broker.
	AcksNone = api.AcksNone
	// AcksLeader: a record is done once the leader appended it.
	AcksLeader = api.AcksLeader
	// AcksAll: a record is done once it is below the high watermark; on a
	// single node, once it is durable per the topic's fsync policy.
	AcksAll = api.AcksAll
)

// Defaults of the options.
const (
	DefaultBatchMaxBytes      = 1 << 20
	DefaultMaxBufferedRecords = 10000
	DefaultMaxBufferedBytes   = 32 << 20 // Kafka's buffer.memory
	DefaultDeliveryTimeout    = 2 * time.Minute
	DefaultRetryBackoff       = 100 * time.Millisecond
	DefaultMaxRetryBackoff    = time.Second // Kafka's retry.backoff.max.ms: what RetryBackoff doubles up to (no option sets it)
	DefaultMetadataMaxAge     = 5 * time.Minute
	DefaultMaxInFlight        = 5 // Kafka's max.in.flight.requests.per.connection
)

// maxIdempotentInFlight bounds MaxInFlight for an idempotent producer: the
// broker remembers the last 5 batches of each producer id per partition
// (Kafka's MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION_FOR_IDEMPOTENCE).
const maxIdempotentInFlight = 5

// Opt configures a Producer; pass options to New, which returns
// ErrInvalidOption for a value out of range.
type Opt func(*config)

type config struct {
	acks            api.Acks
	linger          time.Duration
	batchMaxBytes   int
	codec           compression.Codec
	level           int  // the codec's compression level, once validated
	levelSet        bool // CompressionLevel was given
	partitioner     Partitioner
	maxRecords      int64
	maxBytes        int64
	deliveryTimeout time.Duration
	retryBackoff    time.Duration
	maxRetryBackoff time.Duration
	metadataMaxAge  time.Duration
	maxInFlight     int
	idempotent      bool
	defaultTopic    string
	logger          *slog.Logger
}

func defaults() config {
	return config{
		acks:            AcksAll,
		batchMaxBytes:   DefaultBatchMaxBytes,
		codec:           compression.None,
		maxRecords:      DefaultMaxBufferedRecords,
		maxBytes:        DefaultMaxBufferedBytes,
		deliveryTimeout: DefaultDeliveryTimeout,
		retryBackoff:    DefaultRetryBackoff,
		maxRetryBackoff: DefaultMaxRetryBackoff,
		metadataMaxAge:  DefaultMetadataMaxAge,
		maxInFlight:     DefaultMaxInFlight,
		idempotent:      true,
		partitioner:     StickyKeyPartitioner(),
	}
}

func (c *config) validate() error {
	bad := func(name string, v any) error { return fmt.Errorf("%w: %s(%v)", ErrInvalidOption, name, v) }
	switch {
	case !c.acks.Valid():
		return bad("Acks", c.acks)
	case c.linger < 0:
		return bad("Linger", c.linger)
	case c.batchMaxBytes <= record.HeaderSize || c.batchMaxBytes > math.MaxInt32:
		return bad("BatchMaxBytes", c.batchMaxBytes)
	case !c.codec.Valid():
		return bad("Compression", c.codec)
	case isnil.Value(c.partitioner):
		return bad("RecordPartitioner", nil)
	case c.maxRecords < 1:
		return bad("MaxBufferedRecords", c.maxRecords)
	case c.maxBytes < 0:
		return bad("MaxBufferedBytes", c.maxBytes)
	case c.deliveryTimeout <= 0:
		return bad("DeliveryTimeout", c.deliveryTimeout)
	case c.linger >= c.deliveryTimeout:
		return fmt.Errorf("%w: Linger(%v) must be shorter than DeliveryTimeout(%v)", ErrInvalidOption, c.linger, c.deliveryTimeout)
	case c.retryBackoff <= 0:
		return bad("RetryBackoff", c.retryBackoff)
	case c.metadataMaxAge <= 0:
		return bad("MetadataMaxAge", c.metadataMaxAge)
	case c.maxInFlight < 1:
		return bad("MaxInFlight", c.maxInFlight)
	}
	if c.levelSet {
		if c.codec == compression.None || c.codec == compression.Snappy {
			return fmt.Errorf("%w: CompressionLevel(%d): Compression(%v) has no levels", ErrInvalidOption, c.level, c.codec)
		}
		if err := c.codec.CheckLevel(c.level); err != nil {
			return fmt.Errorf("%w: CompressionLevel(%d): %w", ErrInvalidOption, c.level, err)
		}
	} else {
		c.level = c.codec.DefaultLevel()
	}
	if c.defaultTopic != "" {
		if err := api.ValidateTopicName(c.defaultTopic); err != nil {
			return fmt.Errorf("%w: DefaultTopic: %w", ErrInvalidOption, err)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.maxRetryBackoff < c.retryBackoff {
		c.maxRetryBackoff = c.retryBackoff
	}
	c.idempotent = c.idempotent && c.acks == AcksAll // see Acks
	if c.idempotent && c.maxInFlight > maxIdempotentInFlight {
		return fmt.Errorf("%w: MaxInFlight(%d) must be at most %d for an idempotent producer (see DisableIdempotence)",
			ErrInvalidOption, c.maxInFlight, maxIdempotentInFlight)
	}
	return nil
}

// Acks sets how many replicas must have a record before it is done
// (Kafka's acks). Default [AcksAll]. Any other value makes New fail with
// [ErrInvalidOption].
//
// Idempotence (see [DisableIdempotence]) needs AcksAll. With [AcksNone] or
// [AcksLeader] the producer is not idempotent, as Kafka's Java producer
// does when acks is set and enable.idempotence is not. (franz-go's kgo
// refuses instead: NewClient fails with "idempotency requires acks=all"
// unless DisableIdempotentWrite is given too. runnel has no option that
// asks for idempotence, so there is no conflict to refuse.)
//
// In process, handing a request to the broker is calling
// Client.Produce, which *runnel.Broker answers only after the append
// (and its fsync, under the topic's policy), or ProduceAsync and waiting
// for its acknowledgement (see [MaxInFlight]). So AcksNone differs from
// AcksLeader in that:
//
//   - a failed request is not retried;
//   - a record's Offset is -1 unless the Client reported one.
//
// The broker's error, when the call returns one, is still given to the
// promises, with [ErrMaybeWritten] beside it when the broker may have
// appended the request (it timed out, say, or its answer was lost).
//
// As with the other levels, a batch the broker refuses as too large or
// invalid is still split, so that only the records at fault fail. And one
// refused for an unknown topic or partition still makes the producer look
// the topic up, failing at once the records of a topic confirmed gone (see
// [Producer]).
func Acks(a api.Acks) Opt { return func(c *config) { c.acks = a } }

// Linger sets how long a partition's batch may wait for more records
// before it is sent. New fails with [ErrInvalidOption] for a negative d, or
// one not shorter than [DeliveryTimeout].
//
// Default 0: a batch is sent as soon as the partition has no request in
// flight (with an [AsyncClient]: no request being appended, and fewer than
// [MaxInFlight] waiting for their acknowledgement). Records produced
// meanwhile form the next batch, so batches grow with load by themselves.
// So it was in franz-go before v1.20, and in Kafka's Java producer before
// 4.0; kgo now lingers 10 ms by default, but not in ProduceSync, and Kafka's
// linger.ms is 5 ms since KIP-1030.
//
// With linger 0, a Produce that wakes its partition's sender after a pause
// (the first record of a trickle) yields the processor to it for a moment,
// so that the record leaves at once rather than once another thread has
// woken.
//
// These batches are sent without waiting:
//
//   - A batch that reaches [BatchMaxBytes]: no record, not even one with a
//     nil key and value, fits in the room it has left.
//   - Every batch during Flush or while a Produce waits for buffer space
//     (see [MaxBufferedRecords]), as Kafka's producer sends its batches once
//     its buffer.memory is exhausted.
//   - The open batch of each partition a ProduceSync buffered records on,
//     once it has buffered them all, as its caller waits for them. kgo's
//     ProduceSync un-lingers the partitions it produces to too, since
//     v1.20.7; a Java producer's send().get() waits for linger.ms.
//   - A batch one of whose records' ctx ends (see Produce). To notice that,
//     a lingering batch watches its records' ctxs that may end with
//     context.AfterFunc, one per run of records with the same ctx.
func Linger(d time.Duration) Opt { return func(c *config) { c.linger = d } }

// BatchMaxBytes bounds a batch's uncompressed size, RecordBatch header
// included. Default 1 MiB. A record that does not fit in a batch of its
// own fails with [ErrRecordTooLarge].
//
// n must exceed record.HeaderSize (61) and fit a batch's int32 length field
// (New returns [ErrInvalidOption] otherwise).
//
// The broker refuses a batch larger than its topic's max.message.bytes once
// compressed, or than 64 MiB of records once decompressed
// (compression.DefaultDecodeLimit, what consumers decompress). The producer
// then splits the batch in halves (see [Producer]), so a larger
// BatchMaxBytes costs requests, not records.
func BatchMaxBytes(n int) Opt { return func(c *config) { c.batchMaxBytes = n } }

// Compression sets the codec batches are compressed with, at its
// default level unless CompressionLevel sets another. Default
// compression.None. New returns ErrInvalidOption for a codec that
// compression does not know.
func Compression(codec compression.Codec) Opt { return func(c *config) { c.codec = codec } }

// CompressionLevel sets the level the [Compression] codec compresses
// batches at, as Kafka's producer numbers that codec's levels (KIP-390,
// Kafka 3.8: compression.gzip.level, compression.lz4.level,
// compression.zstd.level):
//
//   - gzip: 1 (fastest) to 9, or -1;
//   - lz4: 1 to 17;
//   - zstd: -131072 to 22 (lower is faster).
//
// Default: the codec's default level, compression.Codec.DefaultLevel (gzip
// -1, lz4 9, zstd 3), which writes the same batches as giving no level.
//
// New returns [ErrInvalidOption], wrapping compression.ErrInvalidLevel and
// naming the range, for a level the codec does not have. It returns
// ErrInvalidOption for any level with compression.None or
// compression.Snappy, which have none. (Kafka has one level config per
// codec, and ignores them all under none or snappy. Here the one level is
// the chosen codec's, and a level given for a codec without levels is taken
// for a mistake.)
//
// Each level runs one of the compression library's, which are fewer (zstd
// has four; gzip's 1 to 9 are klauspost's, not zlib's):
// compression.Codec.AppendEncodeLevel maps them.
//
// Speed: zstd 1 (or any level below 3 but 0, zstd's negative ones too) runs
// klauspost's SpeedFastest, the fastest zstd there is here. lz4's default
// is already its fastest, as in Kafka, where every other lz4 level runs the
// slower HC compressor, for a better ratio.
//
// Memory: a zstd encoder of levels 10 and up (klauspost's
// SpeedBestCompression) holds some 37 MiB, ten times the default's, for the
// life of the process. The process keeps as many as compress at once, at
// most min(GOMAXPROCS, 4) (see compression.Codec.AppendEncodeLevel).
func CompressionLevel(level int) Opt {
	return func(c *config) { c.level, c.levelSet = level, true }
}

// RecordPartitioner sets how records are spread over a topic's
// partitions: StickyKeyPartitioner() (the default), RoundRobinPartitioner(),
// ManualPartitioner(), a PartitionerFunc, or a Partitioner of your own.
// New returns ErrInvalidOption for a nil p, a nil PartitionerFunc or nil
// pointer in it too.
func RecordPartitioner(p Partitioner) Opt { return func(c *config) { c.partitioner = p } }

// MaxBufferedRecords bounds the records produced and not yet done: a
// batch frees its records' space once all their promises have returned
// (see BufferedRecords). Default 10000. New returns ErrInvalidOption for
// n < 1.
func MaxBufferedRecords(n int) Opt { return func(c *config) { c.maxRecords = int64(n) } }

// MaxBufferedBytes bounds the size of the records produced and not yet
// done, each as encoded in a batch (without the batch's header). Default
// 32 MiB (Kafka's buffer.memory); 0 means no bound on bytes
// ([MaxBufferedRecords] still applies). New returns [ErrInvalidOption] for
// a negative n.
//
// A record larger than the bound is still taken when nothing else is
// buffered. Goroutines that produce at the same moment may each pass the
// bound by one record.
//
// Produce calls that wait for space get it in the order they began to
// wait, as the waiters of Java's BufferPool do: a large record that does
// not fit yet is not overtaken, and starved, by smaller ones produced
// after it that would. While one waits, batches do not linger (see
// [Linger]): the space they hold is freed as soon as they can be sent.
//
// The memory a producer holds for its buffer is:
//
//   - the records themselves (yours: it references each until its promise
//     has run);
//   - the encoding of the batches being sent, up to these bytes again;
//   - with [Compression], the records of each batch being compressed at the
//     moment encoded (up to [BatchMaxBytes] each) and the codec's coder
//     (about 1 MB for gzip);
//   - 24 bytes a record (48 for one whose ctx can end), so that small
//     records are bounded by MaxBufferedRecords rather than by this.
//
// See [Producer] for what it holds besides.
//
// With Compression, the encoding of the batches being sent is their
// compressed copy alone: less with values that compress, up to these bytes
// again with values that do not. 4 MiB of random values took 4.3 MB encoded
// and compressed alike, text-like values 0.4 MB with gzip. But snappy
// reserves its worst case, a sixth more than the records encoded, for each
// batch: 4.8 MB either way.
//
// A record is counted as encoded. A header takes 2 bytes and up of it but
// 40 of heap in your record.Record: a record of many empty headers holds
// some 20 times what it is counted. A Key or Value that is a slice of a
// larger array keeps the whole array.
func MaxBufferedBytes(n int64) Opt { return func(c *config) { c.maxBytes = n } }

// DeliveryTimeout bounds the time from a record's buffering to its
// promise, waiting in its batch and retries included (Kafka's
// delivery.timeout.ms, which also counts from the end of send()). Default 2
// minutes. A record not delivered in time fails with an error matching
// [ErrDeliveryTimeout]. New returns [ErrInvalidOption] for d <= 0, or one
// not longer than [Linger].
//
// The time counts from the opening of the record's batch, no later than
// Produce's return, and not the wait for buffer space before.
func DeliveryTimeout(d time.Duration) Opt { return func(c *config) { c.deliveryTimeout = d } }

// RetryBackoff sets the wait before the first retry of a failed request.
// Default 100 ms. New returns [ErrInvalidOption] for d <= 0.
//
// Each further retry of the same batch waits twice as long, up to 1 s (or
// d, if larger), each wait jittered by ±20%.
//
// Kafka's producer (KIP-580) doubles retry.backoff.ms up to
// retry.backoff.max.ms (1 s), and newer clients bound the jittered wait by
// it: here a wait may be 20% over 1 s. A retry.backoff.ms above the maximum
// is, by Kafka's docs, bounded by it, but its ExponentialBackoff then
// returns retry.backoff.ms, unjittered: here too a d over 1 s backs off d,
// jittered.
func RetryBackoff(d time.Duration) Opt { return func(c *config) { c.retryBackoff = d } }

// DisableIdempotence turns idempotence off.
//
// By default (with [AcksAll]) the producer takes a producer id from the
// broker and numbers each partition's batches, so that a retried batch the
// broker already has is not appended twice.
//
// Without it (and with [AcksLeader] or [AcksNone], which turn it off: see
// [Acks]), a retry of a batch the broker appended (its answer lost, say)
// appends it again, as Kafka's producer does with
// enable.idempotence=false:
//
//   - a record may be in the log more than once;
//   - its promise, if it gets nil, is told the partition and offset of the
//     last copy;
//   - a record that fails with [ErrMaybeWritten] may be there more than
//     once too.
//
// Order is still kept: a partition's batches are appended one after
// another, each batch's retries before the next batch, whatever
// [MaxInFlight] (see [Producer]).
func DisableIdempotence() Opt { return func(c *config) { c.idempotent = false } }

// DefaultTopic sets the topic of records whose Topic is "". New refuses a
// name Kafka would (ErrInvalidOption, matching api.ErrInvalidTopic too).
// Without it, such records fail with ErrNoTopic.
func DefaultTopic(t string) Opt { return func(c *config) { c.defaultTopic = t } }

// Logger sets where the producer logs retries, producer id changes,
// failed batches and partitions that refuse appends (see [HealthClient]).
// Default: nowhere. A nil l keeps the default.
//
// A partition's failed batches are logged:
//
//   - at Warn for the first of a run of failures of one kind (the same
//     Kafka error code, or the same local error: a delivery timeout,
//     Close);
//   - then at Warn once every 30 s while the run goes on, with for how
//     long and how many ("failing", "failures");
//   - and at Debug between.
//
// A batch delivered ends the run. Each record's promise gets its error
// every time.
//
// So are logged, a run per topic, the records that fail because their
// topic's partition count was not learnt by [DeliveryTimeout] ("records
// failed: the topic's partition count not known": a broker that cannot
// create the topic, say). A look-up of the topic that answers ends the run.
//
// Its handler runs on the goroutine that logs, and holds no lock of the
// producer's. That goroutine is:
//
//   - a partition's goroutine, as a promise does;
//   - one of the producer's that asks a HealthClient which partitions
//     refuse appends;
//   - or that of a Produce (TryProduce, ProduceSync) that looked a topic's
//     partition count up.
//
// It may call the producer as a promise may (see [Producer]), TryProduce
// (to ship the producer's own lines to a topic, say) or Close. It may not
// call Produce, ProduceSync or Flush, which may wait for the goroutine that
// runs it.
func Logger(l *slog.Logger) Opt { return func(c *config) { c.logger = l } }

// MetadataMaxAge sets how often the producer asks the broker again for
// the partition count of the topics it writes to, to find partitions
// added since (Kafka's metadata.max.age.ms). Default 5 minutes. New
// returns [ErrInvalidOption] for d <= 0.
//
// It is counted on Go's monotonic clock, as [Linger] and [DeliveryTimeout]
// are, which no step of the system clock moves (an NTP step, a VM
// restored). Kafka's client counts it on the wall clock, where a step back
// delays the next periodic look-up by as much.
//
// Besides the periodic look-ups, the producer asks at once:
//
//   - when a batch is refused for an unknown topic or partition, failing
//     the partition's records if the answer confirms that the topic or the
//     partition is gone (see [Producer]);
//   - for a record whose partitioner chose a partition past the count it
//     knows (see [Producer.Produce]).
//
// The periodic look-ups are made:
//
//   - while a topic has records to send, by a partition's goroutine between
//     its batches. It waits for the broker's answer until the delivery
//     deadline of its next batch at most; records produced meanwhile are
//     partitioned by the count before.
//   - once the topic's goroutines have ended (a second after each had
//     nothing to send: see Producer), by the first record of the topic
//     (Produce, TryProduce or ProduceSync) that finds the count d old or
//     more: nothing looks in the background.
//
// Such a record has the count looked up before it is partitioned, and
// waits for the answer as a topic's first record does (see Produce): until
// its ctx ends, Close, or DeliveryTimeout, a retriable error retried,
// except by TryProduce. If that look-up fails, the record fails with its
// error, and the next record asks again.
//
// So a producer idle for hours partitions its next record by the topic's
// count of now, as do:
//
//   - Kafka's producer: its sender refreshes its metadata every
//     metadata.max.age.ms, traffic or not, and it forgets a topic not
//     written to for metadata.max.idle.ms (5 minutes), so that the next
//     send to it waits for the topic's metadata (up to max.block.ms);
//   - franz-go's kgo, which refreshes every MetadataMaxAge in the
//     background and never makes a record wait.
//
// Here an idle producer holds no goroutine and asks the broker nothing, and
// a record for a topic whose goroutine runs costs no clock reading for it.
//
// When two look-ups under way at once answer different counts (the topic
// grew, or was deleted and created again, between their reads), the
// producer cannot tell the newer answer. It asks again, three times in all
// at most, by the same deadline: a look-up begun once the other has
// answered reads the newer count.
func MetadataMaxAge(d time.Duration) Opt { return func(c *config) { c.metadataMaxAge = d } }

// MaxInFlight bounds the requests of one partition that the broker has
// appended and not yet acknowledged (Kafka's
// max.in.flight.requests.per.connection). Default 5; 1 sends a
// partition's next batch only once the last one is done. New returns
// [ErrInvalidOption] for n < 1, and for n > 5 when the producer would be
// idempotent.
//
// An idempotent producer (the default: see [DisableIdempotence] and [Acks])
// takes at most 5, since the broker remembers the last 5 batches of each
// producer id, as Kafka's producer refuses more with enable.idempotence.
// Without idempotence any n of 1 or more is taken, as Kafka takes it.
// (Kafka 4's producer also refuses more than 5 with acks other than all
// unless enable.idempotence=false is given, which its check order makes of
// an idempotence it then turns off. runnel has no enable.idempotence to
// give, and takes any n once acks turn idempotence off.)
//
// It matters with a Client that acknowledges in two steps ([AsyncClient],
// as *runnel.Broker does). While a batch waits for its fsync, the
// partition's next batches are encoded and appended, and one fsync
// acknowledges them all. A batch sent alone, with no record waiting behind
// it, is waited for on the partition's goroutine, as with 1: a trickle of
// records gains nothing from a hand-off. Records still complete in the
// order they were produced.
//
// An error while waiting for the acknowledgement (the log's fsync failed or
// the delivery timeout passed) fails the batch without a retry. It was
// appended, and sending it again could only be answered as a duplicate (or,
// without idempotence, append it again).
//
// With 1, the producer calls Produce, which returns that error itself. One
// the api table calls retriable (api.ErrRequestTimedOut, say) is retried as
// any other, so that a producer without idempotence appends the batch
// again.
//
// A batch whose topic is deleted while it waits fails with the broker's
// api.ErrUnknownTopicOrPartition: its records went with the topic.
func MaxInFlight(n int) Opt { return func(c *config) { c.maxInFlight = n } }
