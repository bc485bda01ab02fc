package producer

import (
	"math/rand/v2"

	"github.com/runnel/runnel/record"
)

// Partitioner spreads records over partitions, as franz-go's
// kgo.Partitioner. The producer calls ForTopic once for each topic it
// writes to, and asks what it returns where each of that topic's records
// goes.
//
// ForTopic runs on the goroutine of the first Produce to the topic, under a
// lock that the first Produce calls to other topics wait for. So it must
// not:
//
//   - block;
//   - produce: a TryProduce to a topic the producer has not written to yet
//     waits for that lock, a deadlock.
//
// A panic of its reaches that caller: the record is left as it was, its
// promise not run.
type Partitioner interface {
	ForTopic(topic string) TopicPartitioner
}

// TopicPartitioner chooses the partition of a record among a topic's n
// partitions (0 <= p < n). For a [ConsistentPartitioner]'s record that may
// go anywhere, it chooses among the n of them that take appends.
//
// A choice out of range fails the record with [ErrInvalidPartition]. A
// choice of n or more does so once the broker, asked again, confirms that
// the topic has no more partitions (see [Producer.Produce]); among those
// that take appends, at once.
//
// The producer calls it (and OnNewBatch) under a lock of its topic. So one
// that serves one topic keeps its state (a sticky partition, a round-robin
// turn) without a lock of its own; one returned by ForTopic for several
// topics must be safe for concurrent use. It must not:
//
//   - block: the topic's other Produce calls wait for the lock, whatever
//     their ctx;
//   - produce: a TryProduce to the topic waits for that lock, held by its
//     own caller, a deadlock.
//
// The lock stays held across the call. It is what spares a partitioner a
// lock of its own, and, for a [NewBatchPartitioner], what keeps its choice
// and the record's place in the new batch together.
//
// It is called on the goroutine of Produce (TryProduce, ProduceSync). If it
// panics, the panic reaches that caller and the record is not buffered: it
// is left as it was, its promise not run. The producer goes on: the lock is
// released, the record's buffer space freed.
type TopicPartitioner interface {
	Partition(r *record.Record, n int) int32
}

// NewBatchPartitioner is a TopicPartitioner that wants to know when a
// record would start a new batch (KIP-480's sticky partitioning).
//
// When the partition a record was given has no batch open to take it (its
// last one was sent, or is full), the producer calls OnNewBatch with that
// partition, as Partition chose it (see [ConsistentPartitioner]), and asks
// Partition again. The record goes where the second answer says, starting
// a batch there if need be.
type NewBatchPartitioner interface {
	TopicPartitioner
	OnNewBatch(partition int32)
}

// ConsistentPartitioner is a TopicPartitioner that says which records
// may go to any partition. It is franz-go's
// TopicPartitioner.RequiresConsistency. [StickyKeyPartitioner]'s returns
// false for a record without a key (nil Key), [RoundRobinPartitioner]'s for
// every record.
//
// For a record for which RequiresConsistency returns false, while a
// [HealthClient] says that some of the topic's partitions refuse appends
// (and not all of them do), the producer asks Partition to choose among the
// partitions that take appends only: n is their number, and the choice i
// their i-th in ascending order.
//
// While some do, OnNewBatch numbers partitions so too, whatever the record.
// For a record that requires consistency (a keyed one) it gets the
// partition as its index among those that take appends, not its id, which
// Partition chose among all. It is not called for a partition that refuses
// appends. So a sticky partition chosen among them is compared with a
// partition of the same numbering.
//
// For a record for which it returns true, and for every record of a
// TopicPartitioner without the method, Partition chooses among all the
// topic's partitions, as it does when all of them take appends. A keyed
// record stays on its key's partition, and waits there, retried, for the
// partition to take appends again or its [DeliveryTimeout].
//
// As Partition, it is called under the topic's lock, and must not block nor
// produce.
type ConsistentPartitioner interface {
	TopicPartitioner
	RequiresConsistency(r *record.Record) bool
}

// PartitionerFunc is a Partitioner that sends every topic's records where
// f says. f keeps no state, or guards what it keeps: it is called for
// several topics at once.
type PartitionerFunc func(r *record.Record, n int) int32

// ForTopic returns f for every topic.
func (f PartitionerFunc) ForTopic(string) TopicPartitioner { return f }

// Partition returns f(r, n).
func (f PartitionerFunc) Partition(r *record.Record, n int) int32 { return f(r, n) }

// KeyPartition is Kafka's partition for a key among n:
// toPositive(murmur2(key)) % n, as the Java client's default partitioner
// and franz-go's StickyKeyPartitioner compute it. n must be positive.
func KeyPartition(key []byte, n int) int32 {
	return int32(int64(Murmur2(key)&0x7fffffff) % int64(n))
}

// StickyKeyPartitioner returns Kafka's default partitioner from 2.4 to 3.2
// (KIP-480), as franz-go's StickyKeyPartitioner(nil):
//
//   - A record with a key (even an empty one) goes to [KeyPartition](key,
//     n), so a key always lands in the same partition while the partition
//     count stays.
//   - A record with a nil key goes to the topic's sticky partition. That
//     changes each time a record would start a new batch in it: at random,
//     but never to the same partition twice in a row when n > 1, each of
//     the others as likely, as Kafka's StickyPartitionCache draws.
//
// The sticky partition is one that takes appends when the Client says
// which do (see [HealthClient] and [ConsistentPartitioner]), as Kafka's
// sticky partition is one that has a leader.
func StickyKeyPartitioner() Partitioner { return stickyKey{} }

type stickyKey struct{}

func (stickyKey) ForTopic(string) TopicPartitioner {
	return &stickyKeyTopic{sticky{on: -1, last: -1}}
}

type stickyKeyTopic struct{ sticky }

func (s *stickyKeyTopic) Partition(r *record.Record, n int) int32 {
	if r.Key != nil {
		return KeyPartition(r.Key, n)
	}
	return s.partition(n)
}

func (s *stickyKeyTopic) OnNewBatch(partition int32) { s.onNewBatch(partition) }

// RequiresConsistency is true for a record with a key: only a record
// without one may go to another partition than its key's.
func (s *stickyKeyTopic) RequiresConsistency(r *record.Record) bool { return r.Key != nil }

// sticky is one topic's sticky partition.
type sticky struct {
	on, last int32 // -1: none
}

func (s *sticky) partition(n int) int32 {
	if s.on >= 0 && int(s.on) < n {
		return s.on // the hot path, inlined
	}
	return s.draw(n)
}

// draw draws the sticky partition anew: there is none, or it is past n.
func (s *sticky) draw(n int) int32 {
	if s.last < 0 || int(s.last) >= n || n == 1 {
		s.on = int32(rand.IntN(n))
	} else {
		// One of the n-1 others, each as likely, as Kafka's
		// StickyPartitionCache draws again until it is not the last.
		s.on = int32(rand.IntN(n - 1))
		if s.on >= s.last {
			s.on++
		}
	}
	return s.on
}

// onNewBatch moves on from the sticky partition when it is the one whose
// batch was sent or filled, as Kafka's StickyPartitionCache.nextPartition
// does: a keyed record starting a batch elsewhere leaves it where it is.
func (s *sticky) onNewBatch(partition int32) {
	if partition == s.on {
		s.last, s.on = s.on, -1
	}
}

// RoundRobinPartitioner returns a partitioner that sends each topic's
// records to its partitions in turn, 0, 1, ..., n-1, 0, ..., keys ignored;
// to those that take appends in turn when the Client says that some do
// not (see HealthClient and ConsistentPartitioner).
func RoundRobinPartitioner() Partitioner { return roundRobin{} }

type roundRobin struct{}

func (roundRobin) ForTopic(string) TopicPartitioner { return new(roundRobinTopic) }

// roundRobinTopic is one topic's turn (the producer calls it under the
// topic's lock).
type roundRobinTopic struct{ next uint64 }

func (p *roundRobinTopic) Partition(_ *record.Record, n int) int32 {
	i := p.next % uint64(n)
	p.next++
	return int32(i)
}

// RequiresConsistency is false: any partition that takes appends will do.
func (p *roundRobinTopic) RequiresConsistency(*record.Record) bool { return false }

// ManualPartitioner returns a partitioner that uses each record's
// Partition field as it is; a record whose Partition the topic does not
// have fails with ErrInvalidPartition. A Partition past the count the
// producer knows makes it ask the broker again first (see Produce), so
// that a partition just added is written to at once.
func ManualPartitioner() Partitioner { return manual{} }

type manual struct{}

func (manual) Partition(r *record.Record, _ int) int32 { return r.Partition }

// ForTopic returns the partitioner itself: it keeps no state.
func (m manual) ForTopic(string) TopicPartitioner { return m }

// Murmur2 is the 32-bit MurmurHash2 that Kafka's clients hash keys with
// (org.apache.kafka.common.utils.Utils.murmur2, seed 0x9747b28c), as an
// unsigned value: int32(Murmur2(b)) is what the Java function returns.
func Murmur2(b []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	h := uint32(seed) ^ uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		k := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
