package producer_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

func TestMurmur2KafkaVectors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int32
	}{
		// Kafka's UtilsTest.testMurmur2.
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
		// Kafka's Utils.murmur2 as quoted by Akka's Murmur2Spec: every
		// tail length.
		{"1", -1993445489},
		{"12", 126087238},
		{"123", -267702483},
		{"1234", -1614185708},
		{"12345", -1188365604},
	} {
		require.Equal(t, c.want, int32(producer.Murmur2([]byte(c.in))), "murmur2(%q)", c.in)
	}
}

// franzGoPartitions are the partitions franz-go's
// kgo.StickyKeyPartitioner(nil) gives these keys, for n = 1, 3, 7, 16, 100:
// kgo.StickyKeyPartitioner(nil).ForTopic("t").Partition(&kgo.Record{Key:
// key}, n), run in the benchmarks/peers module (franz-go v1.22.3), and
// checked again there on 2026-11-30. TestParityKeyPartitioning, in that
// module, compares KeyPartition with kgo live over 2000 keys (the empty
// key, 0x00 and 0xff among them) and 13 partition counts; 200,000 random
// binary keys of 0 to 39 bytes over 1 to 5000 partitions agreed too.
var (
	franzGoKeys       = []string{"", "a", "key-0", "key-1", "key-2", "order-17", "user:42", "21", "foobar", "abc", "a-little-bit-long-string", "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"}
	franzGoPartitions = []struct {
		n    int
		want []int32
	}{
		{1, []int32{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{3, []int32{0, 1, 1, 0, 2, 0, 1, 0, 0, 0, 2, 2}},
		{7, []int32{2, 5, 0, 5, 4, 6, 6, 3, 0, 4, 1, 3}},
		{16, []int32{9, 12, 9, 8, 6, 1, 13, 12, 14, 11, 0, 13}},
		{100, []int32{81, 24, 41, 40, 2, 61, 25, 40, 66, 7, 12, 77}},
	}
)

func TestStickyKeyPartitionerMatchesFranzGo(t *testing.T) {
	for _, c := range franzGoPartitions {
		for _, part := range []producer.TopicPartitioner{
			producer.StickyKeyPartitioner().ForTopic("t"),
			producer.StickyKeyPartitioner().ForTopic("u"),
		} {
			for i, k := range franzGoKeys {
				r := &record.Record{Key: []byte(k)}
				require.Equal(t, c.want[i], part.Partition(r, c.n), "key %q, %d partitions", k, c.n)
				// Stable: the sticky state does not move keyed records.
				if nb, ok := part.(producer.NewBatchPartitioner); ok {
					nb.OnNewBatch(c.want[i])
				}
				require.Equal(t, c.want[i], part.Partition(r, c.n), "key %q again", k)
				require.Equal(t, c.want[i], producer.KeyPartition([]byte(k), c.n))
			}
		}
	}
}

func TestStickyPartitionerSticksUntilNewBatch(t *testing.T) {
	for _, n := range []int{1, 2, 5} {
		part := producer.StickyKeyPartitioner().ForTopic("t").(producer.NewBatchPartitioner)
		r := &record.Record{Value: []byte("no key")}
		prev := part.Partition(r, n)
		for range 50 {
			for range 10 {
				require.Equal(t, prev, part.Partition(r, n), "sticks between new batches")
			}
			part.OnNewBatch(prev + 1) // another partition's new batch: no move
			require.Equal(t, prev, part.Partition(r, n), "a keyed record's new batch elsewhere")
			part.OnNewBatch(prev)
			next := part.Partition(r, n)
			require.True(t, next >= 0 && int(next) < n)
			if n > 1 {
				require.NotEqual(t, prev, next, "a new batch moves to another partition")
			}
			prev = next
		}
		// Fewer partitions than the sticky one: it moves into range.
		require.Less(t, part.Partition(r, 1), int32(1))
	}
}

func TestRoundRobinPartitioner(t *testing.T) {
	part := producer.RoundRobinPartitioner().ForTopic("t")
	counts := make([]int, 4)
	for i := range 40 {
		got := part.Partition(&record.Record{Key: []byte("same key")}, 4)
		require.Equal(t, int32(i%4), got)
		counts[got]++
	}
	require.Equal(t, []int{10, 10, 10, 10}, counts)
	// Each topic keeps its own turn.
	rr := producer.RoundRobinPartitioner()
	a, b := rr.ForTopic("a"), rr.ForTopic("b")
	require.Equal(t, int32(0), a.Partition(&record.Record{}, 3))
	require.Equal(t, int32(1), a.Partition(&record.Record{}, 3))
	require.Equal(t, int32(0), b.Partition(&record.Record{}, 3))
}

func TestManualPartitioner(t *testing.T) {
	part := producer.ManualPartitioner().ForTopic("t")
	require.Equal(t, int32(2), part.Partition(&record.Record{Partition: 2, Key: []byte("k")}, 3))
	require.Equal(t, int32(-1), part.Partition(&record.Record{Partition: -1}, 3))
}

// Through the producer and the broker: a key always lands on its
// partition, the one Kafka's clients would choose.
func TestKeyedRecordsLandOnKafkasPartition(t *testing.T) {
	b := newBroker(t, runneltest.Topic("keys", 7))
	p := newProducer(t, b, producer.DefaultTopic("keys"))
	ctx := testCtx(t)
	var all []*record.Record
	for round := range 3 {
		for i, k := range franzGoKeys {
			r := &record.Record{Key: []byte(k), Value: []byte(fmt.Sprintf("%d-%d", round, i))}
			all = append(all, r)
			p.Produce(ctx, r, nil)
		}
	}
	require.NoError(t, p.Flush(ctx))
	for i, r := range all {
		require.Equal(t, franzGoPartitions[2].want[i%len(franzGoKeys)], r.Partition, "key %q", r.Key)
	}
	// Each partition holds its keys' records in produced order.
	for part := range int32(7) {
		var want []string
		for _, r := range all {
			if r.Partition == part {
				want = append(want, string(r.Value))
			}
		}
		require.Equal(t, want, nilIfEmpty(values(readRecords(t, b, "keys", part))))
	}
}

// Records without keys stick to one partition while its batch is open,
// and move to another once that batch was sent.
func TestStickyPartitioningThroughTheProducer(t *testing.T) {
	b := newBroker(t, runneltest.Topic("sticky", 4))
	p := newProducer(t, b, producer.Linger(time.Minute), producer.DefaultTopic("sticky"))
	ctx := testCtx(t)
	prev := int32(-1)
	for round := range 6 {
		batch := recs(fmt.Sprint("round", round), 20)
		for _, r := range batch {
			p.Produce(ctx, r, nil)
		}
		require.NoError(t, p.Flush(ctx))
		for _, r := range batch {
			require.Equal(t, batch[0].Partition, r.Partition, "one open batch takes every record")
		}
		require.NotEqual(t, prev, batch[0].Partition, "the next batch goes elsewhere")
		prev = batch[0].Partition
	}
	total := 0
	for part := range int32(4) {
		for _, batch := range readBatches(t, b, "sticky", part) {
			require.EqualValues(t, 20, batch.NumRecords())
			total++
		}
	}
	require.Equal(t, 6, total)
}

func TestRoundRobinAndManualThroughTheProducer(t *testing.T) {
	b := newBroker(t, runneltest.Topic("rr", 3), runneltest.Topic("manual", 3))
	ctx := testCtx(t)
	rr := newProducer(t, b, producer.RecordPartitioner(producer.RoundRobinPartitioner()), producer.DefaultTopic("rr"))
	batch := recs("rr", 30)
	require.NoError(t, rr.ProduceSync(ctx, batch...))
	for part := range int32(3) {
		var want []string
		for i := int(part); i < 30; i += 3 {
			want = append(want, string(batch[i].Value))
		}
		require.Equal(t, want, values(readRecords(t, b, "rr", part)))
	}

	m := newProducer(t, b, producer.RecordPartitioner(producer.ManualPartitioner()), producer.DefaultTopic("manual"))
	good := &record.Record{Partition: 2, Value: []byte("to 2")}
	require.NoError(t, m.ProduceSync(ctx, good))
	require.Equal(t, int32(2), good.Partition)
	require.Equal(t, []string{"to 2"}, values(readRecords(t, b, "manual", 2)))
	for _, bad := range []int32{-1, 3, 100} {
		r := &record.Record{Partition: bad, Value: []byte("bad")}
		err := m.ProduceSync(ctx, r, &record.Record{Partition: 1, Value: []byte("fine")})
		require.ErrorIs(t, err, producer.ErrInvalidPartition, "partition %d", bad)
		var re *producer.RecordError
		require.ErrorAs(t, err, &re)
		require.Same(t, r, re.Record)
	}
	require.Len(t, readRecords(t, b, "manual", 1), 3, "the good records of the same calls went through")
}

// A custom partitioner's bad choice fails that record only.
var negative = producer.PartitionerFunc(func(r *record.Record, n int) int32 {
	if string(r.Value) == "bad" {
		return -1
	}
	return 0
})

func TestCustomPartitionerNegative(t *testing.T) {
	b := newBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 2}))
	p := newProducer(t, b, producer.RecordPartitioner(negative), producer.DefaultTopic("t"))
	bad, good := &record.Record{Value: []byte("bad")}, &record.Record{Value: []byte("good")}
	err := p.ProduceSync(testCtx(t), bad, good)
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	require.Equal(t, []string{"good"}, values(readRecords(t, b, "t", 0)))
	require.NoError(t, p.Flush(testCtx(t)))
	require.Zero(t, p.BufferedRecords())
}

// KIP-480 as Kafka does it: a keyed record that starts a batch on another
// partition does not move the sticky partition of records without keys.
func TestKeyedNewBatchLeavesTheStickyPartition(t *testing.T) {
	b := newBroker(t, runneltest.Topic("mixed", 2))
	p := newProducer(t, b, producer.Linger(time.Minute), producer.DefaultTopic("mixed"))
	ctx := testCtx(t)
	keys := [2][]byte{keyOn(t, 2, 0), keyOn(t, 2, 1)} // a key for each partition
	a := &record.Record{Value: []byte("a")}
	p.Produce(ctx, a, nil)
	// One of these opens a batch on the partition a is not on.
	p.Produce(ctx, &record.Record{Key: keys[0], Value: []byte("k0")}, nil)
	p.Produce(ctx, &record.Record{Key: keys[1], Value: []byte("k1")}, nil)
	c := &record.Record{Value: []byte("c")}
	p.Produce(ctx, c, nil)
	require.NoError(t, p.Flush(ctx))
	require.Equal(t, a.Partition, c.Partition)
}

// KIP-480 as Kafka does it, the other way round: a keyed record that
// starts a batch on the sticky partition moves the sticky partition, and
// the next record without a key goes to the other partition's open
// batch, not into the keyed record's batch. (Records without a key join
// the sticky partition's open batch without the topic's lock only while
// it is the batch marked hot, which a keyed record's is not.) Both
// partitions have a batch open, so that the record without a key is
// drawn once: drawn to a partition without one, it would be drawn again,
// and could come back.
func TestKeyedNewBatchOnTheStickyPartitionMovesIt(t *testing.T) {
	b := newBroker(t, runneltest.Topic("mixed", 2))
	// a (some 110 B) and k (some 265 B) do not fit in one batch; k and c
	// (some 10 B) do.
	p := newProducer(t, b, producer.Linger(time.Minute), producer.DefaultTopic("mixed"),
		producer.BatchMaxBytes(record.HeaderSize+300))
	ctx := testCtx(t)
	keys := [2][]byte{keyOn(t, 2, 0), keyOn(t, 2, 1)} // a key for each partition
	a := &record.Record{Value: make([]byte, 100)}
	p.Produce(ctx, a, nil)
	other := 1 - a.Partition
	o := &record.Record{Key: keys[other], Value: []byte("o")} // opens a batch on the other partition
	p.Produce(ctx, o, nil)
	k := &record.Record{Key: keys[a.Partition], Value: make([]byte, 250)}
	p.Produce(ctx, k, nil)
	c := &record.Record{Value: []byte("c")}
	p.Produce(ctx, c, nil)
	require.NoError(t, p.Flush(ctx))
	require.Equal(t, a.Partition, k.Partition)
	require.Equal(t, other, o.Partition)
	require.Equal(t, other, c.Partition, "a record without a key joined the batch a keyed record started on the sticky partition")
}

// counting makes per-topic partitioners with state and no lock, and
// remembers them.
type counting struct {
	mu     sync.Mutex
	topics map[string]*countingTopic
}

type countingTopic struct{ n int }

func (c *counting) ForTopic(topic string) producer.TopicPartitioner {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.topics[topic] != nil {
		panic("ForTopic called twice for " + topic)
	}
	ct := &countingTopic{}
	c.topics[topic] = ct
	return ct
}

func (c *countingTopic) Partition(_ *record.Record, n int) int32 {
	c.n++
	return int32(c.n % n)
}

// A custom Partitioner is asked once per topic, and each topic's
// TopicPartitioner is never called concurrently, also when several
// goroutines produce to it (the race detector checks it under -race).
func TestTopicPartitionersAreSerialized(t *testing.T) {
	b := newBroker(t, runneltest.Topic("x", 3), runneltest.Topic("y", 3))
	part := &counting{topics: map[string]*countingTopic{}}
	p := newProducer(t, b, producer.RecordPartitioner(part))
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for _, topic := range []string{"x", "y", "x", "y"} {
		wg.Go(func() {
			for range 500 {
				p.Produce(ctx, &record.Record{Topic: topic, Value: []byte("v")}, nil)
			}
		})
	}
	wg.Wait()
	require.NoError(t, p.Flush(ctx))
	require.Len(t, part.topics, 2)
	require.Equal(t, 1000, part.topics["x"].n)
	require.Equal(t, 1000, part.topics["y"].n)
}

// A Partitioner whose ForTopic returns nil fails the topic's records.
func TestNilTopicPartitioner(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.RecordPartitioner(nilPartitioner{}), producer.DefaultTopic("t"))
	require.ErrorIs(t, p.ProduceSync(testCtx(t), &record.Record{Value: []byte("v")}), producer.ErrInvalidOption)
}

type nilPartitioner struct{}

func (nilPartitioner) ForTopic(string) producer.TopicPartitioner { return nil }

// A record for a partition beyond the partition count the producer knew
// (CreatePartitions since its last look, MetadataMaxAge not yet passed)
// makes it ask the broker again, as Kafka's Java producer refreshes its
// metadata for a record whose partition is not below the count it has
// (KafkaProducer.waitOnMetadata): the partition exists, and the record is
// delivered rather than failed with ErrInvalidPartition. One the topic
// does not have still fails with it.
func TestManualPartitionBeyondAStaleCountIsLookedUp(t *testing.T) {
	b := newBroker(t, runneltest.Topic("grow", 1))
	p := newProducer(t, b, producer.DefaultTopic("grow"), producer.MetadataMaxAge(time.Hour),
		producer.RecordPartitioner(producer.ManualPartitioner()))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("0")}))
	require.NoError(t, b.CreatePartitions(ctx, "grow", 3))

	r := &record.Record{Partition: 2, Value: []byte("2")}
	require.NoError(t, p.ProduceSync(ctx, r))
	require.Equal(t, int32(2), r.Partition)
	require.Equal(t, []string{"2"}, values(readRecords(t, b, "grow", 2)))

	err := p.ProduceSync(ctx, &record.Record{Partition: 3, Value: []byte("3")})
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	err = p.ProduceSync(ctx, &record.Record{Partition: -1, Value: []byte("-1")})
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
}

// nilTopicPartitioner is a Partitioner whose ForTopic hands out a nil
// pointer as the topic's TopicPartitioner.
type nilTopicPartitioner struct{}

type ptrPartitioner struct{ p int32 }

func (p *ptrPartitioner) Partition(*record.Record, int) int32 { return p.p }

func (nilTopicPartitioner) ForTopic(string) producer.TopicPartitioner {
	var p *ptrPartitioner
	return p
}

// TestNilPartitionerRefused: RecordPartitioner says "New returns
// ErrInvalidOption for a nil p", and New refuses a nil *runnel.Broker as
// a nil Client. A nil PartitionerFunc (var f producer.PartitionerFunc,
// left unset on some path) is a nil p too: New took it, and the first
// Produce panicked calling it. So does a ForTopic that returns a nil
// pointer, where the doc promises the record ErrInvalidOption.
func TestNilPartitionerRefused(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	var f producer.PartitionerFunc
	_, err := producer.New(b, producer.RecordPartitioner(f))
	require.ErrorIs(t, err, producer.ErrInvalidOption, "a nil PartitionerFunc is a nil p")

	p := runneltest.NewProducer(t, b, producer.RecordPartitioner(nilTopicPartitioner{}))
	require.NoError(t, testkit.NoPanic(t, "ProduceSync", func() error {
		err = p.ProduceSync(testCtx(t), &record.Record{Topic: "t"})
		return nil
	}))
	require.ErrorIs(t, err, producer.ErrInvalidOption, "ForTopic returned a nil TopicPartitioner")
}

// TestStickyMovesUniformlyToTheOthers: when a new batch moves the sticky
// partition on, every other partition is as likely to be next, as
// Kafka's StickyPartitionCache draws again until it differs from the
// last. (Moving to last+1 when the draw repeated the last gave that one
// partition twice the others' share: 1/2 of the moves among 4 partitions
// went to last+1, 1/4 to each of the other two.) The bounds are nine
// standard deviations wide (some 7,500 moves from each partition): they
// are never missed by chance.
func TestStickyMovesUniformlyToTheOthers(t *testing.T) {
	const n, moves = 4, 30000
	part := producer.StickyKeyPartitioner().ForTopic("t").(producer.NewBatchPartitioner)
	r := &record.Record{Value: []byte("no key")}
	var counts [n][n]int // [from][to]
	from := part.Partition(r, n)
	for range moves {
		part.OnNewBatch(from)
		to := part.Partition(r, n)
		counts[from][to]++
		from = to
	}
	for f := range n {
		total := 0
		for _, c := range counts[f] {
			total += c
		}
		require.Zero(t, counts[f][f], "never the same partition twice in a row")
		for to := range n {
			if to == f {
				continue
			}
			share := float64(counts[f][to]) / float64(total)
			require.InDelta(t, 1.0/3, share, 0.05, "moves from %d to %d: %d of %d", f, to, counts[f][to], total)
		}
	}
}
