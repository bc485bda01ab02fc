package log_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// A log in memory: append a compressed batch, read it back.
func Example() {
	ctx := context.Background()
	l, err := log.Open("/data/orders-0", log.Config{}, log.Options{FS: vfs.NewMem()})
	if err != nil {
		panic(err)
	}
	defer l.Close()

	var b record.Builder
	b.Append(1_700_000_000_000, []byte("order-1"), []byte("created"), nil)
	b.Append(1_700_000_000_001, []byte("order-1"), []byte("paid"), []record.Header{{Key: "source", Value: []byte("web")}})
	batch, err := b.Finish(compression.Zstd)
	if err != nil {
		panic(err)
	}
	res, err := l.Append(ctx, batch, log.AppendOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("appended offsets %d..%d; durable up to %d\n", res.FirstOffset, res.LastOffset, l.DurableOffset())

	data, err := l.Read(0, 1<<20, math.MaxInt64)
	if err != nil {
		panic(err)
	}
	for batch, err := range record.Batches(data) {
		if err != nil {
			panic(err)
		}
		for r, err := range batch.Records() {
			if err != nil {
				panic(err)
			}
			fmt.Printf("%d %s=%s headers=%d\n", r.Offset, r.Key, r.Value, len(r.Headers))
		}
	}
	// Output:
	// appended offsets 0..1; durable up to 2
	// 0 order-1=created headers=0
	// 1 order-1=paid headers=1
}

// A partition: its log and, on a single node, its high watermark, the end
// of what is durable under the topic's fsync policy (each append fsynced,
// by default). AppendAsync returns once the batch is written, before its
// fsync: consumers, who read below the high watermark, see it only once
// the Durability's Wait made it durable. A read returns whole batches, from
// the one that holds the offset asked for, up to the high watermark.
func ExampleNewPartition() {
	ctx := context.Background()
	l, err := log.Open("/data/orders-0", log.Config{}, log.Options{FS: vfs.NewMem()})
	if err != nil {
		panic(err)
	}
	p := log.NewPartition("orders", 0, l)
	defer p.Close()

	var b record.Builder
	for _, v := range []string{"created", "paid", "shipped"} {
		b.Append(1_700_000_000_000, []byte("order-1"), []byte(v), nil)
	}
	batch, err := b.Finish(compression.None)
	if err != nil {
		panic(err)
	}
	res, durable, err := p.AppendAsync(ctx, batch, log.AppendOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("appended %d to %d: %+v\n", res.FirstOffset, res.LastOffset, p.Offsets())
	if err := durable.Wait(ctx); err != nil {
		panic(err)
	}
	fmt.Printf("fsynced: %+v\n", p.Offsets())

	data, err := p.ReadInto(ctx, nil, 1, 1<<20, p.HighWatermark())
	if err != nil {
		panic(err)
	}
	for b, err := range record.Batches(data) { // whole batches: a reader skips the records below 1
		fmt.Println("read at 1: the batch of offsets", b.BaseOffset(), "to", b.LastOffset(), err)
	}
	// Output:
	// appended 0 to 2: {LogStart:0 HighWatermark:0 LogEnd:3}
	// fsynced: {LogStart:0 HighWatermark:3 LogEnd:3}
	// read at 1: the batch of offsets 0 to 2 <nil>
}

// A Config out of range is refused, by Validate and by Open, with an
// error matching ErrInvalidConfig that names the field, Kafka's config
// and the range, as Kafka's INVALID_CONFIG says it. Zero fields mean
// Kafka's defaults, which WithDefaults fills in.
func ExampleConfig_Validate() {
	for _, cfg := range []log.Config{
		{SegmentBytes: 10},
		{MaxMessageBytes: 10},
		{RetentionTime: -1}, // unlimited
	} {
		err := cfg.Validate()
		fmt.Println(errors.Is(err, log.ErrInvalidConfig), err)
	}
	_, err := log.Open("/data/orders-0", log.Config{SegmentBytes: 10}, log.Options{FS: vfs.NewMem()})
	fmt.Println(errors.Is(err, log.ErrInvalidConfig))

	defaults := log.Config{}.WithDefaults()
	fmt.Println(defaults.SegmentBytes, defaults.RetentionTime, defaults.Sync, defaults.CleanupPolicy)
	// Output:
	// true runnel/log: invalid config: SegmentBytes = 10 (segment.bytes: from 14 to 2147483647)
	// true runnel/log: invalid config: MaxMessageBytes = 10 (max.message.bytes: from 61, a batch header, to 2147483647)
	// false <nil>
	// true
	// 1073741824 168h0m0s always delete
}

// A full disk fails an append's write: the log fences itself, and every
// later append fails with ErrLogFenced, wrapping the cause, until the log
// is opened again. That is KAFKA_STORAGE_ERROR (56), which clients retry.
func ExampleLog_Append_diskFull() {
	ctx := context.Background()
	full := false
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if full && op == vfs.OpWrite && strings.HasSuffix(name, ".log") {
			return syscall.ENOSPC
		}
		return nil
	}))
	var b record.Builder
	b.Append(1_700_000_000_000, []byte("k"), []byte("v"), nil)
	batch, err := b.AppendTo(nil, compression.None) // each Append takes a copy: it assigns offsets in place
	if err != nil {
		panic(err)
	}

	l, err := log.Open("/data/orders-0", log.Config{}, log.Options{FS: fsys})
	if err != nil {
		panic(err)
	}
	full = true
	_, err = l.Append(ctx, bytes.Clone(batch), log.AppendOptions{})
	fmt.Println(errors.Is(err, log.ErrLogFenced), errors.Is(err, syscall.ENOSPC), api.Code(err), api.IsRetriable(err))
	var pathErr *os.PathError // the cause, as the file system gave it
	if errors.As(err, &pathErr) {
		fmt.Println(pathErr.Op, filepath.Base(pathErr.Path), pathErr.Err)
	}
	full = false // room was freed: the log stays fenced
	_, err = l.Append(ctx, bytes.Clone(batch), log.AppendOptions{})
	fmt.Println(errors.Is(err, log.ErrLogFenced), l.LogEndOffset())

	if err := l.Close(); err != nil {
		panic(err)
	}
	if l, err = log.Open("/data/orders-0", log.Config{}, log.Options{FS: fsys}); err != nil {
		panic(err)
	}
	defer l.Close()
	res, err := l.Append(ctx, bytes.Clone(batch), log.AppendOptions{})
	fmt.Println("reopened: appended at", res.FirstOffset, err)
	// Output:
	// true true 56 true
	// write 00000000000000000000.log no space left on device
	// true 0
	// reopened: appended at 0 <nil>
}
