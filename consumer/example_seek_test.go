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

// Seek with AtTime replays a partition from a moment: from its first
// record stamped at or after it (Kafka's offsetsForTimes, then seek). The
// records here carry their own timestamps; a record produced without one
// is stamped with the time Produce buffers it.
func ExampleConsumer_Seek() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "prices", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	p, err := producer.New(b, producer.DefaultTopic("prices"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for h, price := range []string{"100", "104", "99", "101"} {
		r := &record.Record{Value: []byte(price), Timestamp: day.Add(time.Duration(h) * time.Hour)}
		if err := p.ProduceSync(ctx, r); err != nil {
			panic(err)
		}
	}

	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Assign("prices", 0, consumer.Start()); err != nil {
		panic(err)
	}
	read := func(until int64) { // reads up to offset until, exclusive
		for rec, err := range c.Records(ctx) {
			if err != nil {
				panic(err)
			}
			fmt.Printf("  @%d %s %s\n", rec.Offset, rec.Timestamp.UTC().Format("15:04"), rec.Value)
			if rec.Offset+1 == until {
				return
			}
		}
	}
	fmt.Println("from the start:")
	read(4)

	// Replay from 01:30: the first record at or after it is the 02:00 one.
	if err := c.Seek("prices", 0, consumer.AtTime(day.Add(90*time.Minute))); err != nil {
		panic(err)
	}
	fmt.Println("from 01:30:")
	read(4)
	// Output:
	// from the start:
	//   @0 00:00 100
	//   @1 01:00 104
	//   @2 02:00 99
	//   @3 03:00 101
	// from 01:30:
	//   @2 02:00 99
	//   @3 03:00 101
}
