// Command quickstart shows runnel's storage engine at work: it opens one
// log per partition of a topic, appends records in batches, reads them back
// and prints what it did and how fast.
//
//	go run ./examples/quickstart                 # in memory
//	go run ./examples/quickstart -dir /tmp/data  # on disk; run it twice
//
// With -dir each partition's log lives in DIR/<topic>-<partition>, and a
// second run continues at the offsets where the first stopped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
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
	batch      int
	codec      compression.Codec
	sync       log.SyncPolicy
}

func parse(args []string, out io.Writer) (options, error) {
	var o options
	var codec, sync string
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&o.dir, "dir", "", "keep the logs on disk in this directory (default: in memory)")
	fs.StringVar(&o.topic, "topic", "orders", "topic name")
	fs.IntVar(&o.partitions, "partitions", 3, "number of partitions")
	fs.IntVar(&o.records, "records", 300_000, "records to append")
	fs.IntVar(&o.size, "size", 100, "value size in bytes")
	fs.IntVar(&o.batch, "batch", 1000, "records per batch")
	fs.StringVar(&codec, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&sync, "sync", "always", "fsync policy: always (before each append returns), periodic or never")
	if err := fs.Parse(args); err != nil {
		return o, err
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
	if o.partitions < 1 || o.records < 0 || o.size < 0 || o.batch < 1 {
		return o, errors.New("-partitions and -batch must be positive, -records and -size not negative")
	}
	return o, nil
}

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parse(args, out)
	if err != nil {
		return err
	}
	fsys, root, where := vfs.FS(vfs.NewMem()), "/", "in memory"
	if o.dir != "" {
		fsys, root, where = vfs.OS, o.dir, "in "+o.dir
	}
	cfg := log.Config{Sync: o.sync, FlushMessages: 10_000}

	logs := make([]*log.Log, o.partitions)
	defer func() {
		for _, l := range logs {
			if l != nil {
				l.Close()
			}
		}
	}()
	for p := range logs {
		dir := filepath.Join(root, fmt.Sprintf("%s-%d", o.topic, p))
		if logs[p], err = log.Open(dir, cfg, log.Options{FS: fsys}); err != nil {
			return err
		}
		l := logs[p]
		state := "new"
		if l.LogEndOffset() > 0 {
			state = fmt.Sprintf("continuing at offset %d", l.LogEndOffset())
		}
		fmt.Fprintf(out, "opened %s-%d %s: %s (recovered in %v)\n", o.topic, p, where, state, l.Recovery().Duration.Round(time.Microsecond))
	}

	// Append: batches of o.batch records, round-robin over partitions.
	first := make([]int64, o.partitions)
	for p, l := range logs {
		first[p] = l.LogEndOffset()
	}
	value := make([]byte, o.size)
	var key []byte
	var b record.Builder
	var buf []byte
	start := time.Now()
	appended, bytes := 0, 0
	for n := 0; n < o.records; n += o.batch {
		b.Reset()
		now := time.Now().UnixMilli()
		for i := n; i < min(n+o.batch, o.records); i++ {
			copy(value, fmt.Appendf(value[:0], "record %d", i))
			key = fmt.Appendf(key[:0], "key-%d", i)
			b.Append(now, key, value, nil)
		}
		if buf, err = b.AppendTo(buf[:0], o.codec); err != nil {
			return err
		}
		p := (n / o.batch) % o.partitions
		res, err := logs[p].Append(ctx, buf, log.AppendOptions{})
		if err != nil {
			return err
		}
		appended += res.Records
		bytes += len(buf)
	}
	for _, l := range logs {
		if err := l.Flush(ctx); err != nil {
			return err
		}
	}
	took := time.Since(start)
	fmt.Fprintf(out, "appended %d records (%d B values, %s, sync %s) in %v: %.0f records/s, %.1f MB/s\n",
		appended, o.size, o.codec, o.sync, took.Round(time.Millisecond), float64(appended)/took.Seconds(), float64(bytes)/took.Seconds()/1e6)

	// Read back what this run appended.
	start = time.Now()
	read := 0
	var sample []string
	for p, l := range logs {
		for off := first[p]; off < l.LogEndOffset(); {
			data, err := l.Read(off, 1<<20, math.MaxInt64)
			if err != nil {
				return err
			}
			for batch, err := range record.Batches(data) {
				if err != nil {
					return err
				}
				for r, err := range batch.Records() {
					if err != nil {
						return err
					}
					if r.Offset < off {
						continue
					}
					read++
					if len(sample) < 3 {
						sample = append(sample, fmt.Sprintf("  %s-%d@%d key=%s value=%.12q…", o.topic, p, r.Offset, r.Key, r.Value))
					}
				}
				off = batch.NextOffset()
			}
		}
	}
	took = time.Since(start)
	fmt.Fprintf(out, "read back %d records in %v: %.0f records/s\n", read, took.Round(time.Millisecond), float64(read)/took.Seconds())
	for _, s := range sample {
		fmt.Fprintln(out, s)
	}
	if read != appended {
		return fmt.Errorf("read %d records, appended %d", read, appended)
	}
	for p, l := range logs {
		fmt.Fprintf(out, "%s-%d: offsets [%d, %d), %d segment(s), %d bytes\n", o.topic, p, l.LogStartOffset(), l.LogEndOffset(), l.Segments(), l.Size())
	}
	return nil
}
