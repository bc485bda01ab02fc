package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel/runnel/consumer"
)

// AtTime starts a partition at its first record stamped at or after a
// time, as the package doc's c.Assign("orders", 0, consumer.AtTime(t0))
// does (here the records are stamped 1000, 1001 and 1002 ms after the
// Unix epoch).
func ExampleAtTime() {
	ctx := context.Background()
	b := exampleBroker(ctx, "apple", "banana", "cherry")
	defer b.Close()
	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	t0 := time.UnixMilli(1001)
	if err := c.Assign("orders", 0, consumer.AtTime(t0)); err != nil {
		panic(err)
	}
	for rec, err := range c.Records(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%s-%d@%d %s at %d ms\n", rec.Topic, rec.Partition, rec.Offset, rec.Value, rec.Timestamp.UnixMilli())
		if rec.Offset == 2 {
			break
		}
	}
	// Output:
	// orders-0@1 banana at 1001 ms
	// orders-0@2 cherry at 1002 ms
}
