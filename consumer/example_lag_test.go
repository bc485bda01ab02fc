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

// A Records loop that stops once it has caught up with a partition: Lag
// is 0 once the record in hand is the last below the high watermark the
// last fetch saw. (A partition with no records yields nothing to stop
// at: see the Records example for reading a whole topic.)
func ExampleConsumer_Lag() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "audit", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	p, err := producer.New(b, producer.DefaultTopic("audit"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	for _, v := range []string{"login", "view", "logout"} {
		if err := p.ProduceSync(ctx, &record.Record{Value: []byte(v)}); err != nil {
			panic(err)
		}
	}

	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Assign("audit", 0, consumer.Start()); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
	defer cancel()
	for rec, err := range c.Records(ctx) {
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		lag, _ := c.Lag(rec.Topic, rec.Partition)
		fmt.Printf("%d %s (lag %d)\n", rec.Offset, rec.Value, lag)
		if lag == 0 {
			break // caught up
		}
	}

	// Output:
	// 0 login (lag 2)
	// 1 view (lag 1)
	// 2 logout (lag 0)
}
