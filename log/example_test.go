package log_test

import (
	"context"
	"fmt"
	"math"

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
