package consumer_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// produceExample appends values to orders-0 as one zstd batch.
func produceExample(ctx context.Context, b *runnel.Broker, values ...string) error {
	var bld record.Builder
	for i, v := range values {
		bld.Append(int64(1000+i), []byte("fruit"), []byte(v), []record.Header{{Key: "n", Value: fmt.Append(nil, i)}})
	}
	batch, err := bld.AppendTo(nil, compression.Zstd)
	if err != nil {
		return err
	}
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "orders", Partition: 0, Acks: api.AcksAll, Batches: batch})
	return err
}

// exampleBroker opens an in-memory broker (as Example does) whose topic
// orders has one partition, holding values.
func exampleBroker(ctx context.Context, values ...string) *runnel.Broker {
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		panic(err)
	}
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	if err := produceExample(ctx, b, values...); err != nil {
		panic(err)
	}
	return b
}

// A consumer reading a partition of an in-memory broker from its start,
// with the Records iterator, until its context is cancelled: the loop then
// yields ctx's error, its last.
func Example() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	if err := produceExample(ctx, b, "apple", "banana", "cherry"); err != nil {
		panic(err)
	}

	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Assign("orders", 0, consumer.Start()); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for rec, err := range c.Records(ctx) {
		if err != nil && ctx.Err() != nil {
			break // ctx ended: the loop's last error, not a failure
		}
		if err != nil {
			fmt.Println("error:", err)
			continue
		}
		fmt.Printf("%s-%d@%d %s=%s n=%s\n", rec.Topic, rec.Partition, rec.Offset, rec.Key, rec.Value, rec.Headers[0].Value)
		if rec.Offset == 2 {
			cancel() // the loop yields ctx's error, then ends
		}
	}
	pos, _ := c.Position("orders", 0)
	fmt.Println("next offset:", pos)
	// Output:
	// orders-0@0 fruit=apple n=0
	// orders-0@1 fruit=banana n=1
	// orders-0@2 fruit=cherry n=2
	// next offset: 3
}

// Poll returns what one fetch brought, partition by partition, with the
// raw batches and the errors of each.
func ExampleConsumer_Poll() {
	ctx := context.Background()
	b := exampleBroker(ctx, "apple", "banana", "cherry") // orders-0 holds them at 0, 1, 2
	defer b.Close()

	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Assign("orders", 0, consumer.At(1)); err != nil {
		panic(err)
	}
	fetches, err := c.Poll(ctx)
	if err != nil {
		panic(err)
	}
	if err := fetches.Err(); err != nil {
		fmt.Println("partition error:", err)
	}
	fmt.Println("records:", fetches.NumRecords())
	fetches.EachRecord(func(rec *record.Record) {
		fmt.Println(rec.Offset, string(rec.Value))
	})
	fmt.Println("high watermark:", fetches[0].HighWatermark)
	// Output:
	// records: 2
	// 1 banana
	// 2 cherry
	// high watermark: 3
}

// A position past the end is out of range: under ResetLatest the consumer
// moves it to the high watermark, and its Logger tells, at Warn: the
// records up to the position are not there.
func ExampleResetOffset() {
	ctx := context.Background()
	b := exampleBroker(ctx, "apple", "banana", "cherry") // orders-0 holds them at 0, 1, 2
	defer b.Close()

	// Log everything, without times (for the example's output).
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	}))
	policy := consumer.ResetLatest
	c, err := consumer.New(b, consumer.ResetOffset(policy), consumer.Logger(logger), consumer.FetchMaxWait(0))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	at := consumer.At(42)
	if err := c.Assign("orders", 0, at); err != nil {
		panic(err)
	}
	for range 2 { // one Poll finds the position out of range, the next resolves End
		if _, err := c.Poll(ctx); err != nil {
			panic(err)
		}
	}
	pos, _ := c.Position("orders", 0)
	fmt.Printf("assigned at %v, reset by %v: next offset %d\n", at, policy, pos)
	// Output:
	// level=WARN msg="offset out of range past the log end: resetting" topic=orders partition=0 offset=42 log_start_offset=0 high_watermark=3 to=end
	// level=DEBUG msg="resolved offset" topic=orders partition=0 at=end offset=3
	// assigned at 42, reset by latest: next offset 3
}
