package consumer_test

import (
	"context"
	"fmt"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// Pause stops fetching some partitions and keeps their positions, as
// back-pressure: a handler that cannot keep up with one partition (its
// database is slow, say) pauses it and goes on with the others, then
// resumes it where it was.
func ExampleConsumer_Pause() {
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
	if err := p.ProduceSync(ctx, // bob's records go to partition 0, ada's to 1
		&record.Record{Key: []byte("bob"), Value: []byte("pen")},
		&record.Record{Key: []byte("ada"), Value: []byte("book")},
	); err != nil {
		panic(err)
	}

	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.AssignTopic(ctx, "orders", consumer.Start()); err != nil {
		panic(err)
	}
	slow := api.TopicPartition{Topic: "orders", Partition: 0}
	c.Pause(slow)
	for round := 1; round <= 2; round++ {
		fetches, err := c.Poll(ctx)
		if err != nil {
			panic(err)
		}
		fetches.EachRecord(func(r *record.Record) {
			fmt.Printf("poll %d: %s-%d@%d %s=%s\n", round, r.Topic, r.Partition, r.Offset, r.Key, r.Value)
		})
		c.Resume(slow)
	}
	// Output:
	// poll 1: orders-1@0 ada=book
	// poll 2: orders-0@0 bob=pen
}
