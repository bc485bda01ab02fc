package e2e

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/runnel/runnel/compression"
)

// Store says where a system keeps its data.
type Store string

const (
	// Mem keeps everything in the process's memory.
	Mem Store = "mem"
	// Disk keeps the data in files of a fresh directory (vfs.OS), named
	// "os" as in the storage benchmarks.
	Disk Store = "os"
)

// Acks is the acknowledgement a producer waits for.
type Acks string

const (
	// AcksLeader is acks=1: the leader has appended the batch.
	AcksLeader Acks = "1"
	// AcksAll is acks=all: every in-sync replica has it (on one node, the
	// same as AcksLeader as far as the broker is concerned; clients may
	// still differ, e.g. kgo is idempotent only with acks=all).
	AcksAll Acks = "all"
)

// Config says how a System opens a broker for one run.
type Config struct {
	// Dir is an empty directory for the data, or "" for Mem.
	Dir string
	// Sync asks for an fsync of every produced batch before it is
	// acknowledged; otherwise the system never fsyncs on the produce path
	// and leaves flushing to the operating system.
	Sync bool
}

// System is a broker implementation under test.
type System struct {
	// Name is the sys=… element of benchmark names: "runnel", "kfake", ….
	Name string
	// Open starts a broker (or cluster) in this process.
	Open func(ctx context.Context, cfg Config) (Target, error)
	// SyncInMemory says that Open takes Config.Sync without a Dir (runnel:
	// its memory file system's Sync, a no-op on the group-commit path).
	// Systems without it refuse such a Config, and the benchmarks skip
	// those cases for them.
	SyncInMemory bool
}

// Target is one running broker (or cluster) of a System.
type Target interface {
	// CreateTopic creates a topic with the given number of partitions
	// and one replica.
	CreateTopic(ctx context.Context, topic string, partitions int) error
	// NewProducer returns a producer configured as asked.
	NewProducer(cfg ProducerConfig) (Producer, error)
	// NewConsumer returns a consumer of every partition of a topic,
	// from its start.
	NewConsumer(cfg ConsumerConfig) (Consumer, error)
	// Count returns the number of records in a topic (the sum of its
	// partitions' end offsets).
	Count(ctx context.Context, topic string, partitions int) (int64, error)
	// Close stops the broker and releases its files (not its directory).
	Close() error
}

// LogSizer is a Target that can tell the bytes its topic's log holds: its
// record batches as stored (a compressed batch compressed). Produce
// reports them over the value bytes produced when the Target has it.
type LogSizer interface {
	// LogBytes returns the bytes of the record batches in a topic's
	// partitions.
	LogBytes(ctx context.Context, topic string, partitions int) (int64, error)
}

// ProducerConfig configures a producer. Every system gets the same
// values: keyless records spread by the client's default (sticky)
// partitioner, compressed with Codec.
type ProducerConfig struct {
	Acks Acks
	// Codec is the batches' compression codec as Kafka names it ("none",
	// "gzip", "snappy", "lz4", "zstd"); "" is "none".
	Codec string
	// Level is the codec's compression level as Kafka numbers it
	// (compression.gzip.level, compression.zstd.level); 0 is the codec's
	// default.
	Level int
	// Linger is how long a batch waits for more records.
	Linger time.Duration
	// BatchMaxBytes is the largest batch (kgo's ProducerBatchMaxBytes).
	BatchMaxBytes int
	// MaxBuffered is how many records may be produced and not yet
	// acknowledged; Produce blocks beyond it.
	MaxBuffered int
	// MaxInFlight is how many produce requests may wait for their
	// acknowledgement at once (Kafka's
	// max.in.flight.requests.per.connection: runnel's producer.MaxInFlight,
	// per partition; kgo's MaxProduceRequestsInflightPerBroker, which kgo
	// sets to 5 itself when idempotent and leaves at 1 otherwise).
	MaxInFlight int
}

// Producer sends records.
type Producer interface {
	// Produce sends one record with value to topic, asynchronously: it
	// returns once the record is buffered (blocking while MaxBuffered
	// records are outstanding). value must not change until Flush
	// returns. A failure to deliver is reported by Flush.
	Produce(ctx context.Context, topic string, value []byte) error
	// Flush waits until every record produced so far is acknowledged and
	// returns the first delivery error since the producer started.
	Flush(ctx context.Context) error
	// Close releases the producer.
	Close() error
}

// ConsumerConfig configures a consumer of every partition of a topic.
type ConsumerConfig struct {
	Topic      string
	Partitions int
	// MaxWait is the longest a fetch waits for data (the long poll).
	MaxWait time.Duration
}

// Consumer reads records.
type Consumer interface {
	// Poll waits for records (at most until ctx ends) and calls fn with
	// the value of each, in order within a partition; it returns how many
	// there were. fn must not keep value.
	Poll(ctx context.Context, fn func(value []byte)) (int, error)
	// Close releases the consumer.
	Close() error
}

// The settings every workload uses, the same for every system.
const (
	// Topic is the name of the topic the workloads write.
	Topic = "bench"
	// ThroughputLinger is the linger of the produce, consume and group
	// commit workloads: kgo's default.
	ThroughputLinger = 10 * time.Millisecond
	// BatchMaxBytes is the batch size limit of every producer (kgo's
	// default is 1,000,012, Kafka's old default max.message.bytes).
	BatchMaxBytes = 1_000_000
	// MaxBuffered is the producer's buffer limit in records: kgo's default.
	MaxBuffered = 50_000
	// MaxInFlight is the producer's limit of requests in flight: Kafka's
	// default max.in.flight.requests.per.connection, runnel's default, and
	// what kgo uses when idempotent (acks=all); kgo without idempotence
	// (acks=1) would otherwise keep one request in flight.
	MaxInFlight = 5
	// FetchMaxWait is the consumers' long poll.
	FetchMaxWait = 500 * time.Millisecond
)

// ErrInvalidCase is returned by the workloads for a case they cannot run.
var ErrInvalidCase = errors.New("e2e: invalid case")

// ErrMismatch is returned by a workload whose outcome is wrong: records
// missing or counted twice, values of the wrong size.
var ErrMismatch = errors.New("e2e: wrong outcome")

// Case is one point of the benchmark matrix.
type Case struct {
	Store      Store
	Size       int // value bytes per record (no key, no headers)
	Partitions int
	Acks       Acks
	Sync       bool // fsync per batch (else never)
	// Codec is the producers' compression codec ("none", "gzip",
	// "snappy", "lz4", "zstd"), with the values of TextValues; "" (the
	// Matrix's cases) is no compression with Value's random bytes.
	Codec string
	// Level is the codec's compression level as Kafka numbers it
	// (producer.CompressionLevel); 0 is the codec's default.
	Level int
}

// Name is the case's part of a benchmark name, e.g.
// "store=mem/size=100/parts=1/acks=all/sync=never", with "/codec=zstd"
// after it for a case with a codec.
func (c Case) Name() string {
	sync := "never"
	if c.Sync {
		sync = "always"
	}
	name := fmt.Sprintf("store=%s/size=%d/parts=%d/acks=%s/sync=%s", c.Store, c.Size, c.Partitions, c.Acks, sync)
	if c.Codec != "" {
		name += "/codec=" + c.Codec
	}
	if c.Level != 0 {
		name += "/level=" + strconv.Itoa(c.Level)
	}
	return name
}

// Validate returns an error matching ErrInvalidCase when c is not a
// case the workloads can run.
func (c Case) Validate() error {
	switch {
	case c.Store != Mem && c.Store != Disk:
		return fmt.Errorf("%w: store %q", ErrInvalidCase, c.Store)
	case c.Size < 16:
		return fmt.Errorf("%w: size %d (at least 16: latency values carry a timestamp and a sequence number)", ErrInvalidCase, c.Size)
	case c.Partitions < 1:
		return fmt.Errorf("%w: %d partitions", ErrInvalidCase, c.Partitions)
	case c.Acks != AcksLeader && c.Acks != AcksAll:
		return fmt.Errorf("%w: acks %q", ErrInvalidCase, c.Acks)
	}
	if c.Codec != "" {
		codec, err := compression.ParseCodec(c.Codec)
		if err != nil {
			return fmt.Errorf("%w: codec: %v", ErrInvalidCase, err)
		}
		if c.Level != 0 {
			if err := codec.CheckLevel(c.Level); err != nil {
				return fmt.Errorf("%w: level: %v", ErrInvalidCase, err)
			}
		}
	} else if c.Level != 0 {
		return fmt.Errorf("%w: level %d without a codec", ErrInvalidCase, c.Level)
	}
	return nil
}

// Matrix returns the matrix: 100 B and 1 KiB records, 1 and 8
// partitions, acks=1 and acks=all, fsync off and per batch, in memory and
// on disk (32 cases).
func Matrix() []Case {
	var cs []Case
	for _, store := range []Store{Mem, Disk} {
		for _, size := range []int{100, 1024} {
			for _, parts := range []int{1, 8} {
				for _, acks := range []Acks{AcksLeader, AcksAll} {
					for _, sync := range []bool{false, true} {
						cs = append(cs, Case{Store: store, Size: size, Partitions: parts, Acks: acks, Sync: sync})
					}
				}
			}
		}
	}
	return cs
}

// Codecs returns the codecs of CompressedMatrix: "none" (the same text
// values, uncompressed: the baseline) and Kafka's four.
func Codecs() []string { return []string{"none", "gzip", "snappy", "lz4", "zstd"} }

// CompressedMatrix returns the compressed cases: in memory, 100 B and
// 1 KiB records, 1 and 8 partitions, acks=1 and acks=all, without fsync,
// each codec of Codecs at its default level, and zstd at level 1 (its
// fastest band: klauspost's SpeedFastest) (48 cases).
func CompressedMatrix() []Case {
	var cs []Case
	for _, size := range []int{100, 1024} {
		for _, parts := range []int{1, 8} {
			for _, acks := range []Acks{AcksLeader, AcksAll} {
				for _, codec := range Codecs() {
					cs = append(cs, Case{Store: Mem, Size: size, Partitions: parts, Acks: acks, Codec: codec})
				}
				cs = append(cs, Case{Store: Mem, Size: size, Partitions: parts, Acks: acks, Codec: "zstd", Level: 1})
			}
		}
	}
	return cs
}
