package consumer_test

import (
	"context"
	"fmt"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
)

// End reads only what is produced after the Poll that looks it up, as
// Kafka's seekToEnd: the records produced between Assign and that Poll
// are skipped. To read everything produced after a point, take the high
// watermark there (ListOffset with api.Latest) and Assign At it.
func ExampleEnd() {
	ctx := context.Background()
	b := exampleBroker(ctx, "old") // orders-0 holds it at 0
	defer b.Close()

	tail, err := consumer.New(b, consumer.FetchMaxWait(0)) // a Poll answers at once
	if err != nil {
		panic(err)
	}
	defer tail.Close()
	if err := tail.Assign("orders", 0, consumer.End()); err != nil {
		panic(err)
	}
	hw, err := b.ListOffset(ctx, "orders", 0, api.Latest) // the high watermark now: 1
	if err != nil {
		panic(err)
	}
	since, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer since.Close()
	if err := since.Assign("orders", 0, consumer.At(hw.Offset)); err != nil {
		panic(err)
	}

	if err := produceExample(ctx, b, "between"); err != nil { // at 1
		panic(err)
	}
	if _, err := tail.Poll(ctx); err != nil { // looks End up: 2
		panic(err)
	}
	if err := produceExample(ctx, b, "new"); err != nil { // at 2
		panic(err)
	}

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
	defer cancel()
	names := map[*consumer.Consumer]string{tail: "End", since: "At(hw)"}
	for _, c := range []*consumer.Consumer{tail, since} {
		for rec, err := range c.Records(ctx) {
			if err != nil {
				panic(err)
			}
			fmt.Printf("%s read %s at %d\n", names[c], rec.Value, rec.Offset)
			if rec.Offset == 2 {
				break
			}
		}
	}
	// Output:
	// End read new at 2
	// At(hw) read between at 1
	// At(hw) read new at 2
}
