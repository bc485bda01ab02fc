package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// exampleProduce writes values to topic, each under key (so all to the
// key's partition), with a ProduceSync each.
func exampleProduce(ctx context.Context, b *runnel.Broker, topic, key string, values ...string) {
	p, err := producer.New(b, producer.DefaultTopic(topic))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	for _, v := range values {
		r := &record.Record{Key: []byte(key), Value: []byte(v)}
		if err := p.ProduceSync(ctx, r); err != nil {
			panic(err)
		}
	}
}

// DescribeTopic tells each partition's offsets: a consumer reads from the
// log start offset up to the high watermark, and the next record appended
// gets the log end offset. Overrides is the config as it was set; Config
// is the one the topic runs with, the broker's defaults filled in.
// (DeleteRecords has moved partition 0's log start here.)
func ExampleBroker_DescribeTopic() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	cfg := log.TopicConfig{Partitions: 2, Config: log.Config{RetentionTime: 24 * time.Hour}}
	if err := b.CreateTopic(ctx, "payments", cfg); err != nil {
		panic(err)
	}
	exampleProduce(ctx, b, "payments", "bob", "10", "20", "30") // "bob" hashes to partition 0 of 2
	if _, err := b.DeleteRecords(ctx, "payments", 0, 1); err != nil {
		panic(err)
	}

	info, err := b.DescribeTopic(ctx, "payments")
	if err != nil {
		panic(err)
	}
	for _, p := range info.Partitions {
		fmt.Printf("%s-%d: log start %d, high watermark %d, log end %d, healthy %v\n",
			info.Name, p.Partition, p.LogStartOffset, p.HighWatermark, p.LogEndOffset, p.Err == nil)
	}
	fmt.Println("retention set:", info.Overrides.RetentionTime, "runs with:", info.Config.RetentionTime)
	fmt.Println("segment.bytes set:", info.Overrides.SegmentBytes, "runs with:", info.Config.SegmentBytes)
	// Output:
	// payments-0: log start 1, high watermark 3, log end 3, healthy true
	// payments-1: log start 0, high watermark 0, log end 0, healthy true
	// retention set: 24h0m0s runs with: 24h0m0s
	// segment.bytes set: 0 runs with: 1073741824
}

// AlterTopicConfig replaces the whole config, as Kafka's AlterConfigs:
// a field it leaves zero goes back to the default. UpdateTopicConfig
// changes the fields it sets and keeps the others, as Kafka's
// IncrementalAlterConfigs.
func ExampleBroker_AlterTopicConfig() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	cfg := log.Config{RetentionTime: 24 * time.Hour, MaxMessageBytes: 64 << 10}
	if err := b.CreateTopic(ctx, "events", log.TopicConfig{Partitions: 1, Config: cfg}); err != nil {
		panic(err)
	}
	show := func(call string) {
		info, err := b.DescribeTopic(ctx, "events")
		if err != nil {
			panic(err)
		}
		fmt.Printf("%-18s retention %v, max.message.bytes %d\n", call+":", info.Config.RetentionTime, info.Config.MaxMessageBytes)
	}
	show("created")

	err = b.UpdateTopicConfig(ctx, "events", func(c *log.Config) { c.RetentionTime = 72 * time.Hour })
	if err != nil {
		panic(err)
	}
	show("UpdateTopicConfig")

	if err := b.AlterTopicConfig(ctx, "events", log.Config{RetentionTime: 48 * time.Hour}); err != nil {
		panic(err)
	}
	show("AlterTopicConfig")

	err = b.AlterTopicConfig(ctx, "events", log.Config{MaxMessageBytes: 10})
	fmt.Println("invalid:", errors.Is(err, log.ErrInvalidConfig))
	// Output:
	// created:           retention 24h0m0s, max.message.bytes 65536
	// UpdateTopicConfig: retention 72h0m0s, max.message.bytes 65536
	// AlterTopicConfig:  retention 48h0m0s, max.message.bytes 1048588
	// invalid: true
}

// CreatePartitions only grows a topic. Keys are hashed over the new
// count from then on, so a key may land elsewhere than its earlier
// records: create a topic whose keys' order matters with the partitions
// it will need.
func ExampleBroker_CreatePartitions() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "users", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	if err := b.CreatePartitions(ctx, "users", 3); err != nil {
		panic(err)
	}
	n, err := b.Partitions(ctx, "users")
	if err != nil {
		panic(err)
	}
	fmt.Println("partitions:", n)
	fmt.Println("user:42 goes to partition", producer.KeyPartition([]byte("user:42"), n), "where it went to 0")

	err = b.CreatePartitions(ctx, "users", 2)
	fmt.Println("shrink:", errors.Is(err, runnel.ErrInvalidPartitions))
	// Output:
	// partitions: 3
	// user:42 goes to partition 1 where it went to 0
	// shrink: true
}

// DeleteTopic removes a topic and its records. A consumer that was
// reading it gets a *consumer.PartitionError matching
// runnel.ErrUnknownTopic, once; a producer's records fail with it.
func ExampleBroker_DeleteTopic() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	for _, name := range []string{"orders", "scratch"} {
		if err := b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1}); err != nil {
			panic(err)
		}
	}
	exampleProduce(ctx, b, "scratch", "k", "draft")
	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Assign("scratch", 0, consumer.Start()); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
	defer cancel()
	for rec, err := range c.Records(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("read %s-%d@%d %s\n", rec.Topic, rec.Partition, rec.Offset, rec.Value)
		break
	}

	if err := b.DeleteTopic(ctx, "scratch"); err != nil {
		panic(err)
	}
	fmt.Println("topics:", b.Topics())
	for _, err := range c.Records(ctx) {
		var pe *consumer.PartitionError
		fmt.Println("consumer:", errors.As(err, &pe), pe.Partition, errors.Is(err, runnel.ErrUnknownTopic))
		break
	}
	err = b.DeleteTopic(ctx, "scratch")
	fmt.Println("delete again:", errors.Is(err, runnel.ErrUnknownTopic))
	// Output:
	// read scratch-0@0 draft
	// topics: [orders]
	// consumer: true 0 true
	// delete again: true
}

// A compacted topic keeps the latest record of each key; a tombstone (a
// nil Value) says its key is deleted. The broker compacts in its
// maintenance, every MaintenanceInterval; Maintain runs it now.
// Compaction never reads the active segment (the newest), so this topic
// rolls a segment at every batch (a tiny SegmentBytes), and compacts
// whenever anything is dirty. A tombstone stays DeleteRetentionTime (a
// day by default) after the compaction that first reached it, so that a
// consumer that rebuilds its state from the topic meanwhile sees the key
// deleted; the first compaction after that time removes it.
func ExampleBroker_Maintain() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	compacted := log.Config{
		CleanupPolicy:          log.Compact,
		SegmentBytes:           100,
		MinCleanableDirtyRatio: -1, // 0: compact whenever anything is dirty
	}
	if err := b.CreateTopic(ctx, "prices", log.TopicConfig{Partitions: 1, Config: compacted}); err != nil {
		panic(err)
	}
	p, err := producer.New(b, producer.DefaultTopic("prices"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	for _, r := range []*record.Record{
		{Key: []byte("apple"), Value: []byte("3")},
		{Key: []byte("pear"), Value: []byte("5")},
		{Key: []byte("apple"), Value: []byte("4")},
		{Key: []byte("pear"), Value: nil},         // a tombstone
		{Key: []byte("plum"), Value: []byte("7")}, // in the active segment
	} {
		if err := p.ProduceSync(ctx, r); err != nil { // a batch, and so a segment, each
			panic(err)
		}
	}

	if err := b.Maintain(ctx); err != nil {
		panic(err)
	}
	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Assign("prices", 0, consumer.Start()); err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
	defer cancel()
	for rec, err := range c.Records(ctx) {
		if err != nil {
			panic(err)
		}
		if rec.Value == nil {
			fmt.Printf("@%d %s deleted\n", rec.Offset, rec.Key)
		} else {
			fmt.Printf("@%d %s=%s\n", rec.Offset, rec.Key, rec.Value)
		}
		if rec.Offset == 4 {
			break
		}
	}
	// Output:
	// @2 apple=4
	// @3 pear deleted
	// @4 plum=7
}

// DeleteRecords makes a partition's records below an offset unreadable
// (Kafka's kafka-delete-records), as retention does by time or size. A
// consumer whose position falls below the new log start is out of range,
// and resets per its ResetOffset policy: by default (ResetEarliest) to
// the log start, so it reads on from there without an error.
func ExampleBroker_DeleteRecords() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "jobs", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	exampleProduce(ctx, b, "jobs", "k", "a", "b", "c", "d") // at 0, 1, 2, 3

	start, err := b.DeleteRecords(ctx, "jobs", 0, 3)
	if err != nil {
		panic(err)
	}
	fmt.Println("log start offset:", start)

	c, err := consumer.New(b)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if err := c.Assign("jobs", 0, consumer.At(1)); err != nil { // a position saved before
		panic(err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // bounds the wait, should records be missing
	defer cancel()
	for rec, err := range c.Records(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("read @%d %s\n", rec.Offset, rec.Value)
		break
	}
	// Output:
	// log start offset: 3
	// read @3 d
}
