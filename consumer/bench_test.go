package consumer_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
)

// benchBroker holds records records of 100-byte values in batches of
// perBatch, on one partition of an in-memory broker.
func benchBroker(b *testing.B, records, perBatch int, codec compression.Codec) *runnel.Broker {
	b.Helper()
	br, err := runnel.Open(runnel.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	ctx := context.Background()
	if err := br.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	value := make([]byte, 100)
	key := []byte("key-0123")
	var bld record.Builder
	for i := 0; i < records; i += perBatch {
		bld.Reset()
		for range min(perBatch, records-i) {
			bld.Append(1, key, value, nil)
		}
		data, err := bld.AppendTo(nil, codec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := br.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: data}); err != nil {
			b.Fatal(err)
		}
	}
	return br
}

// BenchmarkConsume reads every record of a partition, per op, with the
// Records iterator, with Poll and EachRecord, or with Poll and
// Fetches.Records (fetches: as benchmarks/internal/runnelsys reads).
func BenchmarkConsume(b *testing.B) {
	const records = 100_000
	for _, codec := range []compression.Codec{compression.None, compression.LZ4} {
		br := benchBroker(b, records, 1000, codec)
		for _, mode := range []string{"records", "poll", "fetches"} {
			b.Run(fmt.Sprintf("%s/%s", codec, mode), func(b *testing.B) {
				b.ReportAllocs()
				ctx := context.Background()
				var n int
				for b.Loop() {
					c, err := consumer.New(br, consumer.FetchMaxWait(0))
					if err != nil {
						b.Fatal(err)
					}
					if err := c.Assign("t", 0, consumer.Start()); err != nil {
						b.Fatal(err)
					}
					n = 0
					switch mode {
					case "records":
						for _, err := range c.Records(ctx) {
							if err != nil {
								b.Fatal(err)
							}
							if n++; n == records {
								break
							}
						}
					case "poll":
						for n < records {
							fs, err := c.Poll(ctx)
							if err != nil {
								b.Fatal(err)
							}
							fs.EachRecord(func(*record.Record) { n++ })
						}
					case "fetches":
						for n < records {
							fs, err := c.Poll(ctx)
							if err != nil {
								b.Fatal(err)
							}
							for _, err := range fs.Records() {
								if err != nil {
									b.Fatal(err)
								}
								n++
							}
						}
					}
					c.Close()
				}
				b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkAssignUnassign assigns each partition of a 20,000-partition
// topic, then unassigns them one at a time, first to last: the cost of
// a large assignment's churn, which Unassign kept quadratic while it
// shifted every later assignment.
func BenchmarkAssignUnassign(b *testing.B) {
	const n = 20000
	br, err := runnel.Open(runnel.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	if err := br.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: n}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		c, err := consumer.New(br)
		if err != nil {
			b.Fatal(err)
		}
		for p := range int32(n) {
			if err := c.Assign("t", p, consumer.Start()); err != nil {
				b.Fatal(err)
			}
		}
		for p := range int32(n) {
			c.Unassign("t", p)
		}
		if len(c.Assigned()) != 0 {
			b.Fatal("partitions left assigned")
		}
		c.Close()
	}
}
