package benchmarks

import (
	"fmt"
	"testing"

	"github.com/runnel/runnel/benchmarks/internal/e2e"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/record"
)

// BenchmarkBuildBatch measures the producer's side alone: encoding 1000
// records into a warm record.Builder and finishing the batch (its CRC-32C)
// without compression. An op is one batch.
func BenchmarkBuildBatch(b *testing.B) {
	for _, size := range appendSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			value := e2e.Value(size)
			var bld record.Builder
			warm, err := encodeBatch(&bld, nil, recordsPerBatch, value, baseTime)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(warm)))
			m := startMeter(b)
			for range b.N {
				bld.Reset()
				for j := range recordsPerBatch {
					bld.Append(baseTime+int64(j), nil, value, nil)
				}
				if _, err := bld.Finish(compression.None); err != nil {
					b.Fatal(err)
				}
			}
			m.finish(int64(b.N) * recordsPerBatch)
		})
	}
}

// BenchmarkValidateBatch measures what Log.Append does to a batch before
// writing it (log/append.go, validate and validateRecords, for a topic
// without compaction): parse the header, check the CRC, and decode every
// record of the uncompressed batch. An op is one batch of 1000 records.
func BenchmarkValidateBatch(b *testing.B) {
	for _, size := range appendSizes {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			data := appendBatch(b, size)
			b.Run("step=crc", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				m := startMeter(b)
				for range b.N {
					batch, err := record.Parse(data, 0)
					if err == nil {
						err = batch.Validate(0)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				m.finish(int64(b.N) * recordsPerBatch)
			})
			b.Run("step=records", func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				m := startMeter(b)
				var r record.Record
				for range b.N {
					it, err := record.Batch(data).Iter(0, 0)
					if err != nil {
						b.Fatal(err)
					}
					it.SkipHeaders()
					n := 0
					for it.Next(&r) {
						n++
					}
					if it.Err() != nil || n != recordsPerBatch {
						b.Fatal(n, it.Err())
					}
				}
				m.finish(int64(b.N) * recordsPerBatch)
			})
		})
	}
}
