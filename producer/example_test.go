package producer_test

import (
	"context"
	"errors"
	"fmt"
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
