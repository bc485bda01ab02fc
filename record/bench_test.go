package record

import (
	"fmt"
	"testing"

	"github.com/runnel/runnel/compression"
)

// BenchmarkRecordIter decodes one uncompressed batch of 1000 records
// (values of 100 B or 1 KiB, no key, no headers) per op, as a consumer
// does: go test -run '^$' -bench RecordIter ./record
func BenchmarkRecordIter(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			var bld Builder
			v := make([]byte, size)
			for range 1000 {
				bld.Append(1_700_000_000_000, nil, v, nil)
			}
			batch, err := bld.AppendTo(nil, compression.None)
			if err != nil {
				b.Fatal(err)
			}
			recs := make([]Record, 1001)
			b.ReportAllocs()
			for b.Loop() {
				it, err := Batch(batch).Iter(0, 0)
				if err != nil {
					b.Fatal(err)
				}
				n := 0
				for it.Next(&recs[n]) {
					n++
				}
				if it.Err() != nil || n != 1000 {
					b.Fatalf("%d records, %v", n, it.Err())
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkCheckFraming checks one uncompressed batch of 1000 records
// (values of 100 B or 1 KiB) per op, every field of every record, as a
// broker checks a produced batch: go test -run '^$' -bench CheckFraming ./record
func BenchmarkCheckFraming(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			var bld Builder
			v := make([]byte, size)
			for i := range 1000 {
				bld.Append(1_700_000_000_000+int64(i%7), nil, v, nil)
			}
			batch, err := bld.AppendTo(nil, compression.None)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Batch(batch).CheckFraming(0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
		})
	}
}
