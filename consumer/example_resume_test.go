package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// A service that resumes where it stopped. There are no consumer groups
// yet, so no committed offsets: the application keeps each partition's
// Position itself (in a file, or in the database its handler writes to)
// and gives it back with At when it starts again. Saving the position
// after the record is handled is at-least-once: after a crash, the
// records since the last save are handled again. Here the positions
// live in a map, and the service runs twice on one broker directory.
func Example_resume() {
	dir, err := os.MkdirTemp("", "runnel-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	saved := map[int32]int64{} // partition -> next offset to read

	for run := 1; run <= 2; run++ {
		ctx := context.Background()
		b, err := runnel.Open(runnel.Config{Dir: dir})
		if err != nil {
			panic(err)
		}
		err = b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, runnel.ErrTopicExists) {
			panic(err)
		}
		p, err := producer.New(b, producer.DefaultTopic("events"))
		if err != nil {
			panic(err)
		}
		for _, v := range []string{"a", "b"} {
			if err := p.ProduceSync(ctx, &record.Record{Value: fmt.Appendf(nil, "run%d-%s", run, v)}); err != nil {
				panic(err)
			}
		}
		p.Close()

		c, err := consumer.New(b)
		if err != nil {
			panic(err)
		}
		at := consumer.Start() // the first run: from the oldest record
		if o, ok := saved[0]; ok {
			at = consumer.At(o)
		}
		if err := c.Assign("events", 0, at); err != nil {
			panic(err)
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
		for rec, err := range c.Records(ctx) {
			if err != nil {
				fmt.Println("error:", err)
				continue
			}
			fmt.Printf("run %d: %d %s\n", run, rec.Offset, rec.Value) // handle the record, then save:
			saved[rec.Partition], _ = c.Position(rec.Topic, rec.Partition)
			if lag, _ := c.Lag(rec.Topic, rec.Partition); lag == 0 {
				break // caught up: a service would go on until shutdown
			}
		}
		cancel()
		c.Close()
		fmt.Printf("run %d: saved position %d\n", run, saved[0])
		if err := b.Close(); err != nil {
			panic(err)
		}
	}
	// Output:
	// run 1: 0 run1-a
	// run 1: 1 run1-b
	// run 1: saved position 2
	// run 2: 2 run2-a
	// run 2: 3 run2-b
	// run 2: saved position 4
}
