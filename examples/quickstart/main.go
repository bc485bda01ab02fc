// Command quickstart shows runnel at work: it opens a broker inside this
// process, creates a topic, produces records with a producer, reads them
// back with a consumer, and prints what it did and how fast.
//
//	go run ./examples/quickstart                 # in memory
//	go run ./examples/quickstart -dir /tmp/data  # on disk; run it twice
//
// With -dir the broker keeps its topics in DIR (each partition's log in
// DIR/<topic>-<partition>), and a second run finds the topic and continues
// at the offsets where the first stopped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

type options struct {
	dir        string
	topic      string
	partitions int
	records    int
	size       int
	linger     time.Duration
	codec      compression.Codec
	sync       log.SyncPolicy
}

// parse parses the command line args; the usage (-h, or a flag that is
// wrong) goes to stderr.
func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	var codec, sync string
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", "", "keep the broker's data in this directory (default: in memory)")
	fs.StringVar(&o.topic, "topic", "orders", "topic name")
	fs.IntVar(&o.partitions, "partitions", 3, "number of partitions of a new topic")
	fs.IntVar(&o.records, "records", 300_000, "records to produce")
	fs.IntVar(&o.size, "size", 100, "value size in bytes")
	fs.DurationVar(&o.linger, "linger", time.Millisecond, "producer linger: how long a batch waits for more records")
	fs.StringVar(&codec, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&sync, "sync", "always", "fsync policy of a new topic: always (before each produce is acknowledged), periodic or never")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q: quickstart takes flags only (-h lists them)", fs.Arg(0))
	}
	var err error
	if o.codec, err = compression.ParseCodec(codec); err != nil {
		return o, err
	}
	switch sync {
	case "always":
		o.sync = log.SyncAlways
	case "periodic":
		o.sync = log.SyncPeriodic
	case "never":
		o.sync = log.SyncNever
	default:
		return o, fmt.Errorf("unknown -sync %q", sync)
	}
	if o.partitions < 1 || o.records < 0 || o.size < 0 || o.linger < 0 {
		return o, errors.New("-partitions must be positive; -records, -size and -linger not negative")
	}
	return o, nil
}

// run runs quickstart with the command line args: what it does goes to
// out, the usage to stderr (as the flag package's own output does), and a
// failure is its error.
func run(ctx context.Context, args []string, out, stderr io.Writer) (err error) {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed, and that is all
	}
	if err != nil {
		return err
	}
	where := "in memory"
	if o.dir != "" {
		where = "in " + o.dir
	}

	// The broker: Dir "" keeps everything in memory.
	b, err := runnel.Open(runnel.Config{Dir: o.dir})
	if err != nil {
		return err
	}
	// Close flushes and closes the logs: its error (a write or fsync that
	// failed) is the run's, not to be dropped.
	defer func() {
		if cerr := b.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close broker: %w", cerr))
		}
	}()

	err = b.CreateTopic(ctx, o.topic, log.TopicConfig{Partitions: o.partitions, Config: log.Config{Sync: o.sync, FlushMessages: 10_000}})
	switch {
	case errors.Is(err, runnel.ErrTopicExists):
		// The topic keeps the config it was created with: -sync and
		// -partitions apply to a new topic only.
		fmt.Fprintf(out, "opened broker %s: topic %q is there from an earlier run\n", where, o.topic)
	case err != nil:
		return err
	default:
		noun := "partitions"
		if o.partitions == 1 {
			noun = "partition"
		}
		fmt.Fprintf(out, "opened broker %s: created topic %q with %d %s\n", where, o.topic, o.partitions, noun)
	}
	before, err := b.DescribeTopic(ctx, o.topic)
	if err != nil {
		return err
	}
	for _, p := range before.Partitions {
		if p.LogEndOffset > 0 {
			fmt.Fprintf(out, "  %s-%d continues at offset %d\n", o.topic, p.Partition, p.LogEndOffset)
		}
	}

	// The consumer starts where this run's records will begin.
	c, err := consumer.New(b)
	if err != nil {
		return err
	}
	defer c.Close()
	for _, p := range before.Partitions {
		if err := c.Assign(o.topic, p.Partition, consumer.At(p.LogEndOffset)); err != nil {
			return err
		}
	}

	// Produce: asynchronously, keyed, batched per partition.
	p, err := producer.New(b, producer.Linger(o.linger), producer.Compression(o.codec))
	if err != nil {
		return err
	}
	defer p.Close()
	var failed atomic.Pointer[error]
	value := make([]byte, o.size)
	start := time.Now()
	for i := range o.records {
		r := &record.Record{Topic: o.topic, Key: []byte("customer-" + strconv.Itoa(i%1000)), Value: value}
		p.Produce(ctx, r, func(r *record.Record, err error) {
			if err != nil {
				failed.CompareAndSwap(nil, &err)
			}
		})
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	if err := failed.Load(); err != nil {
		return *err
	}
	took := time.Since(start)
	fmt.Fprintf(out, "produced %d records (%d B values, %s, sync %s) in %v: %.0f records/s, %.1f MB/s\n",
		o.records, o.size, o.codec, before.Config.Sync, roundTook(took),
		float64(o.records)/took.Seconds(), float64(o.records)*float64(o.size)/took.Seconds()/1e6)

	// Consume exactly what this run produced.
	start = time.Now()
	read := 0
	var sample []string
	if o.records > 0 {
		for r, err := range c.Records(ctx) {
			if err != nil { // ctx's error (the loop's last) when ctx ends
				return fmt.Errorf("consumed %d records, produced %d: %w", read, o.records, err)
			}
			read++
			if len(sample) < 3 {
				sample = append(sample, fmt.Sprintf("  %s-%d@%d key=%s value=%d B", r.Topic, r.Partition, r.Offset, r.Key, len(r.Value)))
			}
			if read == o.records {
				break
			}
		}
	}
	if read < o.records { // Records ended without an error: c was closed
		return fmt.Errorf("consumed %d records, produced %d: %w", read, o.records, consumer.ErrClosed)
	}
	took = time.Since(start)
	fmt.Fprintf(out, "consumed %d records in %v: %.0f records/s\n", read, roundTook(took), float64(read)/took.Seconds())
	for _, s := range sample {
		fmt.Fprintln(out, s)
	}

	after, err := b.DescribeTopic(ctx, o.topic)
	if err != nil {
		return err
	}
	for _, p := range after.Partitions {
		fmt.Fprintf(out, "%s-%d: offsets [%d, %d), %d bytes\n", o.topic, p.Partition, p.LogStartOffset, p.HighWatermark, p.Size)
	}
	return nil
}

// roundTook rounds a measured duration for printing: to the millisecond,
// or below 10 ms to the microsecond, so that a short run does not print
// "in 0s" beside its rate.
func roundTook(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
