package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// A Records loop over every partition of a topic, from its start, until
// it has read what was there when it began: the high watermark of each
// partition (DescribeTopic) is where the records end for now, and
// Position, inside the loop, is the offset after the record in hand. A
// service that tails the topic instead loops until its ctx ends.
func ExampleConsumer_Records() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 2}); err != nil {
		panic(err)
	}
	p, err := producer.New(b, producer.DefaultTopic("orders"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	if err := p.ProduceSync(ctx,
		&record.Record{Key: []byte("ada"), Value: []byte("book")},
		&record.Record{Key: []byte("bob"), Value: []byte("pen")},
		&record.Record{Key: []byte("ada"), Value: []byte("ink")},
	); err != nil {
		panic(err)
	}

	info, err := b.DescribeTopic(ctx, "orders")
	if err != nil {
		panic(err)
	}
	left := map[int32]int64{} // partition → high watermark, for those not read up to it
	for _, pi := range info.Partitions {
		if pi.HighWatermark > pi.LogStartOffset {
			left[pi.Partition] = pi.HighWatermark
		}
	}

	if len(left) == 0 {
		return // nothing there to read: a Records loop would wait for records
	}

	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.AssignTopic(ctx, "orders", consumer.Start()); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
	defer cancel()
	for rec, err := range c.Records(ctx) {
		if err != nil { // a *consumer.PartitionError; the loop goes on
			fmt.Println("error:", err)
			continue
		}
		fmt.Printf("%s-%d@%d %s=%s\n", rec.Topic, rec.Partition, rec.Offset, rec.Key, rec.Value)
		if pos, _ := c.Position(rec.Topic, rec.Partition); pos >= left[rec.Partition] {
			delete(left, rec.Partition)
		}
		if len(left) == 0 {
			break // breaking out loses nothing: the next Records goes on from Position
		}
	}
	// Records of one partition come in offset order; partitions interleave.

	// Unordered output:
	// orders-0@0 bob=pen
	// orders-1@0 ada=book
	// orders-1@1 ada=ink
}
