// Package api is what passes between runnel's clients (packages producer and
// consumer) and a broker (the root package):
//
//   - the requests and responses of Kafka's Produce, Fetch, ListOffsets and
//     InitProducerID, as Go structs;
//   - the one table that maps runnel's errors to Kafka's error codes and
//     back, ready for the wire protocol ([Code], [ForCode]);
//   - Kafka's rules for topic names ([ValidateTopicName]), which clients
//     and broker apply alike.
//
// It sits above the storage layers (log, record) and below both the broker
// and the clients, so that neither imports the other. Each client declares
// the small interface it needs in these terms, and *runnel.Broker
// satisfies it.
package api

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel/runnel/log"
)

// Acks is how many replicas must have a produced batch before the broker
// answers (Kafka's acks).
type Acks int16

const (
	// AcksNone: the client asks for no acknowledgement (Kafka's broker
	// sends no response at all).
	//
	// runnel's in-process broker still answers once it has appended, and
	// fsynced under the default policy. A client that wants none does not
	// wait for the answer (see producer.AcksNone).
	AcksNone Acks = 0
	// AcksLeader: the broker answers once the leader appended the batch.
	AcksLeader Acks = 1
	// AcksAll: the broker answers once the batch is below the high
	// watermark (on a single node: durable per the topic's fsync policy).
	AcksAll Acks = -1
)

// Valid reports whether a is one of the three values Kafka knows.
func (a Acks) Valid() bool { return a == AcksNone || a == AcksLeader || a == AcksAll }

// String returns Kafka's value of the acks config, "0", "1" or "all", and
// "acks(N)" for any other value.
func (a Acks) String() string {
	switch a {
	case AcksNone:
		return "0"
	case AcksLeader:
		return "1"
	case AcksAll:
		return "all"
	}
	return fmt.Sprintf("acks(%d)", int16(a))
}

// Special timestamps of ListOffsets.
//
// Kafka's -5 (LATEST_TIERED, KIP-1005) is taken as a timestamp, since
// runnel has no tiered storage (Kafka answers offset -1). Any other
// negative timestamp, -6 (KIP-1023's EARLIEST_PENDING_UPLOAD) among them,
// is refused with [ErrUnsupportedVersion], as Kafka's broker refuses the
// ones it does not know.
const (
	// Latest asks for the high watermark: the offset the next record a
	// consumer can read will get.
	Latest int64 = -1
	// Earliest asks for the log start offset.
	Earliest int64 = -2
	// MaxTimestamp asks for the offset of the first record with the
	// largest timestamp (Kafka's MAX_TIMESTAMP, KIP-734).
	MaxTimestamp int64 = -3
	// EarliestLocal asks for the log start offset of the local log
	// (KIP-405): Earliest, without tiered storage.
	EarliestLocal int64 = -4
)

// ListedOffset answers a ListOffsets look-up of one partition. It holds:
//
//   - the offset a timestamp, Latest or Earliest resolved to;
//   - the timestamp of the record there (as Kafka's ListOffsets answers
//     it);
//   - the ID of the topic whose partition resolved it.
//
// Kafka's ListOffsets response names a topic only by its name, with no
// topic ID. Ours carries the ID, so that a client can name it in the Fetch
// that reads from the offset ([FetchPartition.TopicID]).
//
// A topic deleted and created again under its name between the look-up
// and that Fetch is then answered with [ErrUnknownTopicID]. It is not
// taken to hold the offset, which was the old topic's. Without the ID, a
// consumer would read the new topic from there (skipping its first
// records, or some of them).
type ListedOffset struct {
	// Offset is the offset the look-up resolved to.
	Offset int64
	// Timestamp is the timestamp (ms) of the record at Offset, when a
	// timestamp or MaxTimestamp resolved to a record: with MaxTimestamp,
	// the largest timestamp.
	//
	// It is -1:
	//
	//   - for Latest and Earliest;
	//   - when no record matched (Offset is then the end);
	//   - when the record was removed (compacted) between the look-up and
	//     the read of its timestamp.
	//
	// It is as a Client reports it: zero from one that gives none.
	Timestamp int64
	// TopicID is the ID of the topic the offset is in; zero from a Client
	// that gives none.
	TopicID log.TopicID
}

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string // the topic's name
	Partition int32  // the partition's number, from 0
}

// String returns the partition as Kafka names it, "<topic>-<partition>",
// the name of its directory on disk.
func (tp TopicPartition) String() string { return fmt.Sprintf("%s-%d", tp.Topic, tp.Partition) }

// ProduceRequest appends record batches to one partition.
type ProduceRequest struct {
	// Topic and Partition name the partition the batches go to.
	Topic     string
	Partition int32
	// Acks is when the broker answers (see Acks).
	Acks Acks
	// Batches holds one or more RecordBatch v2, as a producer encoded them.
	// The broker assigns offsets by rewriting them in place: it modifies
	// Batches, and keeps none of it after answering.
	Batches []byte
}

// ProduceResponse answers a ProduceRequest.
type ProduceResponse struct {
	BaseOffset     int64 // offset of the first record, with AcksNone too (see AcksNone); -1 when refused
	LogAppendTime  int64 // ms, or -1 when the topic uses CreateTime (for a Duplicate: when the original batch was appended under CreateTime)
	LogStartOffset int64 // the partition's log start offset when it answered; -1 when refused, as Kafka's
	// Duplicate is true when the batch was a retry of one the broker had
	// already appended (idempotence).
	//
	// BaseOffset is then the original one, and so is LogAppendTime,
	// whatever the topic's timestamp type has become since. LogAppendTime
	// is -1 for a batch appended under CreateTime. Kafka's broker answers
	// a duplicate with the batch's max timestamp there, but its records'
	// largest create time is no log append time.
	Duplicate bool
}

// Ack is the acknowledgement of a produce request that the broker has
// appended but not yet acknowledged (see producer.AsyncClient).
//
// Wait returns once the request is acknowledged per its Acks: on a single
// node, once its batches are durable under the topic's fsync policy. Or it
// returns the error that the broker would have answered instead.
//
// Wait must return when its ctx ends, with ctx's error, or nil if the
// request was acknowledged meanwhile. A producer's Close and its delivery
// deadline end a wait that way.
type Ack interface {
	Wait(ctx context.Context) error
}

// FetchRequest asks for records of several partitions, waiting up to
// MaxWait for MinBytes of them.
type FetchRequest struct {
	// MaxWait is how long the broker may wait for MinBytes before it
	// answers with what it has (Kafka's fetch.max.wait.ms). 0 answers at
	// once.
	MaxWait time.Duration
	// MinBytes is how many bytes of records the broker waits for, up to
	// MaxWait.
	//
	// MinBytes below 1 (the zero value) means 1. A fetch that must not
	// wait, as Kafka's fetch.min.bytes=0 asks, has MaxWait 0.
	//
	// A *runnel.Broker takes one above MaxBytes (as it caps it) as that,
	// as Kafka's broker does.
	MinBytes int
	// MaxBytes bounds the whole response. At least one batch is returned
	// (KIP-74).
	//
	// Zero or below means 50 MiB, the Java consumer's default
	// fetch.max.bytes. Kafka's broker takes a max_bytes of 0 as it is
	// instead: the first batch, and nothing more.
	//
	// A *runnel.Broker caps it at its Config.FetchMaxBytes (55 MiB by
	// default), as Kafka's broker caps it at its fetch.max.bytes.
	MaxBytes int
	// Partitions are the partitions to fetch, each from its Offset.
	Partitions []FetchPartition
}

// FetchPartition is one partition of a FetchRequest.
type FetchPartition struct {
	Topic string
	// TopicID, unless zero, is the ID of the topic the fetch means (from
	// an earlier FetchedPartition).
	//
	// If Topic now has another ID or none (it was deleted, and maybe
	// created again), the partition is answered with ErrUnknownTopicID,
	// not with the new topic's records.
	TopicID   log.TopicID
	Partition int32
	// Offset is the offset of the first record wanted: the batch that
	// holds it comes first.
	Offset int64
	// MaxBytes bounds this partition's batches. The first batch of the
	// response's first partition with data comes whole whatever its size
	// (KIP-74).
	//
	// Zero or below means no limit of the partition's own: the request's
	// applies. Kafka's broker takes a partition_max_bytes of 0 as it is
	// instead: the first batch, if this partition comes first.
	MaxBytes int
}

// FetchResponse answers a FetchRequest, one entry per requested partition,
// in the request's order.
type FetchResponse struct {
	Partitions []FetchedPartition // one per FetchRequest.Partitions entry
}

// FetchedPartition is one partition of a FetchResponse.
type FetchedPartition struct {
	Topic     string
	TopicID   log.TopicID // the topic's ID, when the Client knows it
	Partition int32
	// HighWatermark is the offset below which consumers read, and
	// LogStartOffset the partition's first offset, as of the answer.
	//
	// Both are -1 (Kafka's INVALID_HIGH_WATERMARK and
	// INVALID_LOG_START_OFFSET) when Err says there is no such partition
	// (an unknown topic, partition or topic ID, or a topic name Kafka
	// refuses, ErrInvalidTopic). With any other Err, they are the
	// partition's own.
	HighWatermark  int64
	LogStartOffset int64
	// Records holds whole batches (see record.Batches). The first may
	// begin before the requested offset.
	//
	// The caller may keep the bytes: they never change. It must not modify
	// them. A Client may hand out its storage itself (*runnel.Broker on the
	// memory FS does), and a write to them is then a write to the log,
	// served to every reader.
	Records []byte
	// Err is the partition's error, such as log.ErrOffsetOutOfRange,
	// ErrUnknownTopicOrPartition or ErrUnknownTopicID. The other
	// partitions may still have data.
	Err error
}
