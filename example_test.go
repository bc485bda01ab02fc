package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// ExampleOpen is the README's first example: a broker, a topic, a
// producer and a consumer, in memory (Dir ""; with a directory, on disk).
func ExampleOpen() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{Dir: ""}) // Dir "" = in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 8}); err != nil {
		panic(err)
	}

	p, err := producer.New(b, producer.Linger(5*time.Millisecond), producer.Compression(compression.Zstd))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	// Produce returns at once; the promise runs once the broker answered.
	p.Produce(ctx, &record.Record{Topic: "orders", Key: []byte("ada"), Value: []byte("book")},
		func(r *record.Record, err error) {
			fmt.Printf("acknowledged: %s at %s-%d@%d, err %v\n", r.Key, r.Topic, r.Partition, r.Offset, err)
		})
	if err := p.Flush(ctx); err != nil { // waits for the promise above
		panic(err)
	}
	// ProduceSync waits, and sets each record's partition and offset.
	recs := []*record.Record{
		{Topic: "orders", Key: []byte("ada"), Value: []byte("pen")},
		{Topic: "orders", Key: []byte("bob"), Value: []byte("ink")},
	}
	if err := p.ProduceSync(ctx, recs...); err != nil {
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
	var read []*record.Record
	for rec, err := range c.Records(ctx) {
		if err != nil {
			panic(err)
		}
		if read = append(read, rec); len(read) == 3 {
			break
		}
	}
	// Records of one partition come in order; partitions interleave.
	slices.SortFunc(read, func(x, y *record.Record) int {
		return int(x.Partition-y.Partition)*1000 + int(x.Offset-y.Offset)
	})
	for _, r := range read {
		fmt.Printf("read: %s-%d@%d %s=%s\n", r.Topic, r.Partition, r.Offset, r.Key, r.Value)
	}
	// Output:
	// acknowledged: ada at orders-5@0, err <nil>
	// read: orders-5@0 ada=book
	// read: orders-5@1 ada=pen
	// read: orders-6@0 bob=ink
}

// ExampleOpen_disk: on disk, a second Open finds the topics, their
// configs and records again; while a broker holds the directory, another
// gets vfs.ErrLocked.
func ExampleOpen_disk() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "runnel-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "data")

	b, err := runnel.Open(runnel.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 2}); err != nil {
		panic(err)
	}
	p, err := producer.New(b)
	if err != nil {
		panic(err)
	}
	if err := p.ProduceSync(ctx, &record.Record{Topic: "orders", Key: []byte("ada"), Value: []byte("book")}); err != nil {
		panic(err)
	}
	p.Close()
	_, err = runnel.Open(runnel.Config{Dir: dir})
	fmt.Println("second Open while the first is open:", errors.Is(err, vfs.ErrLocked))
	b.Close()

	b, err = runnel.Open(runnel.Config{Dir: dir})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	info, err := b.DescribeTopic(ctx, "orders")
	if err != nil {
		panic(err)
	}
	for _, p := range info.Partitions {
		fmt.Printf("after reopen: %s-%d holds offsets [%d, %d)\n", info.Name, p.Partition, p.LogStartOffset, p.HighWatermark)
	}
	err = b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 2})
	fmt.Println("create it again:", errors.Is(err, runnel.ErrTopicExists))
	// Output:
	// second Open while the first is open: true
	// after reopen: orders-0 holds offsets [0, 0)
	// after reopen: orders-1 holds offsets [0, 1)
	// create it again: true
}

// A service that embeds the broker creates its topics at each start: the
// first start creates them, and later ones find them there
// (ErrTopicExists, whatever the partitions and config asked for). A config
// the service wants applied to a topic that exists is set with
// UpdateTopicConfig, which reopens nothing when it changes nothing.
func ExampleBroker_CreateTopic() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "runnel-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	for start := 1; start <= 2; start++ {
		b, err := runnel.Open(runnel.Config{Dir: dir})
		if err != nil {
			panic(err)
		}
		err = b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 4})
		switch {
		case errors.Is(err, runnel.ErrTopicExists):
			fmt.Printf("start %d: orders exists\n", start)
		case err != nil:
			panic(err)
		default:
			fmt.Printf("start %d: orders created\n", start)
		}
		err = b.UpdateTopicConfig(ctx, "orders", func(c *log.Config) { c.RetentionTime = 30 * 24 * time.Hour })
		if err != nil {
			panic(err)
		}
		info, err := b.DescribeTopic(ctx, "orders")
		if err != nil {
			panic(err)
		}
		fmt.Printf("start %d: %d partitions, retention %v\n", start, len(info.Partitions), info.Config.RetentionTime)
		if err := b.Close(); err != nil {
			panic(err)
		}
	}
	// Output:
	// start 1: orders created
	// start 1: 4 partitions, retention 720h0m0s
	// start 2: orders exists
	// start 2: 4 partitions, retention 720h0m0s
}

// With AutoCreateTopics, a topic is created the first time a client
// names it, with DefaultPartitions partitions, as Kafka's
// auto.create.topics.enable does. It is off by default, so that a
// misspelt name fails with ErrUnknownTopic instead.
func ExampleConfig_autoCreateTopics() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{AutoCreateTopics: true, DefaultPartitions: 3}) // in memory
	if err != nil {
		panic(err)
	}
	defer b.Close()
	p, err := producer.New(b)
	if err != nil {
		panic(err)
	}
	defer p.Close()
	r := &record.Record{Topic: "signups", Key: []byte("ada"), Value: []byte("hello")}
	if err := p.ProduceSync(ctx, r); err != nil {
		panic(err)
	}
	info, err := b.DescribeTopic(ctx, "signups")
	if err != nil {
		panic(err)
	}
	fmt.Printf("topics %v; %s has %d partitions; ada went to %d\n", b.Topics(), info.Name, len(info.Partitions), r.Partition)
	// Output:
	// topics [signups]; signups has 3 partitions; ada went to 2
}

// TopicDefaults are the broker's own defaults for topic configs (Kafka's
// log.retention.ms and the like in server.properties): a topic takes them
// for the fields it does not set. DescribeTopic tells the two apart.
func ExampleConfig_topicDefaults() {
	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{
		TopicDefaults: log.Config{RetentionTime: 3 * 24 * time.Hour, MaxMessageBytes: 256 << 10},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "clicks", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	audit := log.TopicConfig{Partitions: 1, Config: log.Config{RetentionTime: -1}} // -1: unlimited
	if err := b.CreateTopic(ctx, "audit", audit); err != nil {
		panic(err)
	}
	for _, name := range b.Topics() {
		info, err := b.DescribeTopic(ctx, name)
		if err != nil {
			panic(err)
		}
		retention := info.Config.RetentionTime.String()
		if info.Config.RetentionTime < 0 {
			retention = "unlimited"
		}
		fmt.Printf("%s: retention %s (its own: %v), max.message.bytes %d\n",
			name, retention, info.Overrides.RetentionTime != 0, info.Config.MaxMessageBytes)
	}
	// Output:
	// audit: retention unlimited (its own: true), max.message.bytes 262144
	// clicks: retention 72h0m0s (its own: false), max.message.bytes 262144
}

// Topic names follow Kafka's rules, and a name that breaks them fails
// with an error matching ErrInvalidTopic, from ValidateTopicName and from
// every call that takes a name. CreateTopic also refuses a name that
// differs from an existing topic's in case only, which would share its
// directory on a case-insensitive file system.
func ExampleValidateTopicName() {
	for _, name := range []string{"orders", "orders.v2_eu-west", "orders/eu", "", ".."} {
		err := runnel.ValidateTopicName(name)
		fmt.Printf("%q: valid %v\n", name, err == nil)
	}

	ctx := context.Background()
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if err := b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}); err != nil {
		panic(err)
	}
	err = b.CreateTopic(ctx, "Orders", log.TopicConfig{Partitions: 1})
	fmt.Println("Orders beside orders:", errors.Is(err, runnel.ErrInvalidTopic))
	_, err = b.DescribeTopic(ctx, "orders/eu")
	fmt.Println("DescribeTopic(\"orders/eu\"):", errors.Is(err, runnel.ErrInvalidTopic))
	// Output:
	// "orders": valid true
	// "orders.v2_eu-west": valid true
	// "orders/eu": valid false
	// "": valid false
	// "..": valid false
	// Orders beside orders: true
	// DescribeTopic("orders/eu"): true
}
