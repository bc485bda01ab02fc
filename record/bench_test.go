package record

import (
	"bytes"
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

// BenchmarkCheckFramingMixed is BenchmarkCheckFraming (1000 records of
// 100 B values) for batches of records that quickRecords does not take,
// a header of 21 B each (shape=headers), or the first alone
// (shape=headerFirst): checkFraming tries quickRecords less often after
// a try that took none, but still takes the common records after a first
// one of another shape.
func BenchmarkCheckFramingMixed(b *testing.B) {
	v := make([]byte, 100)
	h := []Header{{Key: "trace", Value: bytes.Repeat([]byte{'t'}, 14)}}
	for _, shape := range []string{"headers", "headerFirst"} {
		b.Run("shape="+shape, func(b *testing.B) {
			var bld Builder
			for i := range 1000 {
				if i == 0 || shape == "headers" {
					bld.Append(1_700_000_000_000, nil, v, h)
				} else {
					bld.Append(1_700_000_000_000, nil, v, nil)
				}
			}
			batch, err := bld.AppendTo(nil, compression.None)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := Batch(batch).CheckFraming(0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCheckFramingCompressed checks one compressed batch of 100-byte text
// records, 64 KiB or 1 MiB of them, per op, as a broker checks a
// produced batch: decompressed whole into a reused buffer
// (CheckFramingBuffer, how=buffer) or as they decompress through a 64
// KiB buffer (CheckFramingStream, how=stream). MB/s is over the records,
// uncompressed: go test -run '^$' -bench CheckFramingCompressed ./record
func BenchmarkCheckFramingCompressed(b *testing.B) {
	for _, codec := range []compression.Codec{compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
		for _, size := range []int{64 << 10, 1 << 20} {
			var bld Builder
			r := uint64(size)
			for i := 0; bld.Size() < size; i++ {
				v := make([]byte, 0, 100)
				for len(v) < 100 {
					r = r*6364136223846793005 + 1442695040888963407
					v = fmt.Appendf(v, "k%d=%d ", r>>60, (r>>20)%100000)
				}
				bld.Append(1_700_000_000_000+int64(i), nil, v[:100], nil)
			}
			batch, err := bld.Finish(codec)
			if err != nil {
				b.Fatal(err)
			}
			batch = append(Batch(nil), batch...)
			for _, how := range []string{"buffer", "stream"} {
				b.Run(fmt.Sprintf("codec=%v/batch=%dKiB/how=%s", codec, size>>10, how), func(b *testing.B) {
					buf := make([]byte, StreamBufferSize)
					var err error
					b.SetBytes(int64(size))
					b.ReportAllocs()
					for b.Loop() {
						if how == "buffer" {
							buf, _, err = batch.CheckFramingBuffer(0, 0, buf)
						} else {
							buf, _, err = batch.CheckFramingStream(0, 0, buf)
						}
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}
