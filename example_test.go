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
