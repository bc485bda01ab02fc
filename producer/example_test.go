package producer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

func Example() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 3}); err != nil {
		panic(err)
	}

	p, err := producer.New(b,
		producer.Linger(5*time.Millisecond),
		producer.Compression(compression.Zstd),
		producer.DefaultTopic("orders"))
	if err != nil {
		panic(err)
	}
	defer p.Close()

	// Asynchronously: the promise runs once the record is stored.
	p.Produce(ctx, &record.Record{Key: []byte("customer-7"), Value: []byte("pizza")},
		func(r *record.Record, err error) {
			if err != nil {
				fmt.Println("failed:", err)
				return
			}
			fmt.Printf("%s went to partition %d, offset %d\n", r.Value, r.Partition, r.Offset)
		})
	if err := p.Flush(ctx); err != nil {
		panic(err)
	}

	// Synchronously: the same key lands on the same partition.
	r := &record.Record{Key: []byte("customer-7"), Value: []byte("salad")}
	if err := p.ProduceSync(ctx, r); err != nil {
		panic(err)
	}
	fmt.Printf("%s went to partition %d, offset %d\n", r.Value, r.Partition, r.Offset)

	// Errors are typed.
	err = p.ProduceSync(ctx, &record.Record{Topic: "no-such-topic", Value: []byte("x")})
	fmt.Println(errors.Is(err, runnel.ErrUnknownTopic))
	// Output:
	// pizza went to partition 1, offset 0
	// salad went to partition 1, offset 1
	// true
}

// A custom partitioner: records whose value starts with "!" go to
// partition 0, the others to their key's partition (KeyPartition).
func ExamplePartitionerFunc() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "alerts", log.TopicConfig{Partitions: 4}); err != nil {
		panic(err)
	}
	urgent := producer.PartitionerFunc(func(r *record.Record, n int) int32 {
		if len(r.Value) > 0 && r.Value[0] == '!' {
			return 0
		}
		return producer.KeyPartition(r.Key, n)
	})
	p, err := producer.New(b, producer.RecordPartitioner(urgent), producer.DefaultTopic("alerts"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	fire := &record.Record{Key: []byte("room-7"), Value: []byte("!fire")}
	note := &record.Record{Key: []byte("room-7"), Value: []byte("door open")}
	if err := p.ProduceSync(ctx, fire, note); err != nil {
		panic(err)
	}
	fmt.Println(fire.Partition, note.Partition == producer.KeyPartition([]byte("room-7"), 4))
	// Output: 0 true
}

// Keyed records go where Kafka's Java client and franz-go put them:
// murmur2 of the key, modulo the partition count. So a service that
// moves from Kafka to runnel, or shares keys with one, keeps each key's
// partition, at the same partition count. The default partitioner
// (StickyKeyPartitioner) hashes every non-nil key, an empty one too; a
// nil key is spread.
func ExampleKeyPartition() {
	for _, key := range []string{"key-0", "key-1", "order-17", "user:42", ""} {
		fmt.Printf("%-10q of 3: %d, of 16: %2d\n", key,
			producer.KeyPartition([]byte(key), 3), producer.KeyPartition([]byte(key), 16))
	}
	fmt.Println("Java's Utils.murmur2(\"21\"):", int32(producer.Murmur2([]byte("21"))))

	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 16}); err != nil {
		panic(err)
	}
	p, err := producer.New(b) // the default partitioner
	if err != nil {
		panic(err)
	}
	defer p.Close()
	r := &record.Record{Topic: "orders", Key: []byte("order-17"), Value: []byte("paid")}
	if err := p.ProduceSync(ctx, r); err != nil {
		panic(err)
	}
	fmt.Println("order-17 produced to partition", r.Partition)
	// Output:
	// "key-0"    of 3: 1, of 16:  9
	// "key-1"    of 3: 0, of 16:  8
	// "order-17" of 3: 0, of 16:  1
	// "user:42"  of 3: 1, of 16: 13
	// ""         of 3: 0, of 16:  9
	// Java's Utils.murmur2("21"): -973932308
	// order-17 produced to partition 1
}

// ManualPartitioner sends each record to the partition it names, as a
// Kafka ProducerRecord with an explicit partition. A partition the topic
// does not have fails the record with ErrInvalidPartition.
func ExampleManualPartitioner() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "shards", log.TopicConfig{Partitions: 3}); err != nil {
		panic(err)
	}
	p, err := producer.New(b, producer.RecordPartitioner(producer.ManualPartitioner()), producer.DefaultTopic("shards"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	recs := []*record.Record{
		{Partition: 2, Value: []byte("to 2")},
		{Partition: 0, Value: []byte("to 0")},
		{Partition: 2, Value: []byte("to 2 again")},
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
		panic(err)
	}
	for _, r := range recs {
		fmt.Printf("%s: shards-%d@%d\n", r.Value, r.Partition, r.Offset)
	}
	err = p.ProduceSync(ctx, &record.Record{Partition: 3, Value: []byte("to 3")})
	fmt.Println("partition 3 of 3:", errors.Is(err, producer.ErrInvalidPartition))
	// Output:
	// to 2: shards-2@0
	// to 0: shards-0@0
	// to 2 again: shards-2@1
	// partition 3 of 3: true
}

// TryProduce never waits for buffer space: when the buffer is full
// (MaxBufferedRecords, MaxBufferedBytes), its promise gets ErrMaxBuffered
// at once, before it returns. It suits a caller that must not wait for
// space: an HTTP handler that sheds load, a promise, a Logger's handler.
// (Like Produce, it still asks the broker for a topic's partition count
// the first time it writes to the topic.) Here the records linger for a
// minute, so that the first two fill the buffer until Flush sends them.
func ExampleProducer_TryProduce() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "metrics", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	p, err := producer.New(b, producer.DefaultTopic("metrics"),
		producer.MaxBufferedRecords(2), producer.Linger(time.Minute))
	if err != nil {
		panic(err)
	}
	defer p.Close()

	var mu sync.Mutex // promises run on the producer's goroutines too
	promise := func(r *record.Record, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case errors.Is(err, producer.ErrMaxBuffered):
			fmt.Printf("%s: dropped, buffer full\n", r.Value)
		case err != nil:
			fmt.Printf("%s: failed: %v\n", r.Value, err)
		default:
			fmt.Printf("%s: stored at %d\n", r.Value, r.Offset)
		}
	}
	for _, v := range []string{"cpu=71", "cpu=73", "cpu=90"} {
		p.TryProduce(ctx, &record.Record{Value: []byte(v)}, promise)
	}
	fmt.Println("buffered:", p.BufferedRecords())
	if err := p.Flush(ctx); err != nil { // sends the lingering batch, waits for its promises
		panic(err)
	}
	fmt.Println("buffered:", p.BufferedRecords())
	// Output:
	// cpu=90: dropped, buffer full
	// buffered: 2
	// cpu=71: stored at 0
	// cpu=73: stored at 1
	// buffered: 0
}

// Shut a producer down with Flush, then Close: Close fails with ErrClosed
// the records it still buffers (here, lingering for a minute), where
// Flush first delivers them.
func ExampleProducer_Close() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "emails", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	promise := func(r *record.Record, err error) {
		fmt.Printf("%s: closed %v, err %v\n", r.Value, errors.Is(err, producer.ErrClosed), err)
	}
	for _, flush := range []bool{false, true} {
		p, err := producer.New(b, producer.DefaultTopic("emails"), producer.Linger(time.Minute))
		if err != nil {
			panic(err)
		}
		p.Produce(ctx, &record.Record{Value: fmt.Appendf(nil, "flush first %v", flush)}, promise)
		if flush {
			if err := p.Flush(ctx); err != nil {
				panic(err)
			}
		}
		if err := p.Close(); err != nil {
			panic(err)
		}
	}
	// Output:
	// flush first false: closed true, err runnel/producer: producer is closed
	// flush first true: closed false, err <nil>
}
