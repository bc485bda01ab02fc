package consumer_test

import (
	"testing"

	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/record"
)

func scanData(b *testing.B) []byte {
	value := make([]byte, 100)
	var bld record.Builder
	for range 1000 {
		bld.Append(1, []byte("key-0123"), value, nil)
	}
	data, err := bld.AppendTo(nil, compression.None)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkScan is the CPU cost per record of decoding a fetched batch:
// through a Fetch's iterator, and with package record alone reusing one
// Record (the floor).
func BenchmarkScan(b *testing.B) {
	data := scanData(b)
	b.Run("fetch", func(b *testing.B) {
		b.ReportAllocs()
		f := consumer.Fetch{Topic: "t", Batches: data}
		n := 0
		for b.Loop() {
			f.EachRecord(func(*record.Record) { n++ })
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
	})
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		n := 0
		var r record.Record
		for b.Loop() {
			it, err := record.Batch(data).Iter(0, 0)
			if err != nil {
				b.Fatal(err)
			}
			for it.Next(&r) {
				n++
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
	})
}
