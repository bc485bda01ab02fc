package producer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// discard is a Client that accepts every batch at once without storing
// it: what is left is the producer's own cost.
type discard struct{ next atomic.Int64 }

func (d *discard) Partitions(context.Context, string) (int, error) { return 1, nil }

func (d *discard) InitProducerID(context.Context) (int64, int16, error) { return 1, 0, nil }

func (d *discard) Produce(_ context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	n := int64(record.Batch(req.Batches).NumRecords())
	return api.ProduceResponse{BaseOffset: d.next.Add(n) - n, LogAppendTime: -1}, nil
}

// benchBroker returns an in-memory broker without fsync holding topic "t"
// of one partition, closed when the benchmark ends.
func benchBroker(b *testing.B) *runnel.Broker {
	br, err := runnel.Open(runnel.Config{TopicDefaults: log.Config{Sync: log.SyncNever}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { br.Close() })
	if err := br.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	return br
}

// benchProducer returns a producer with benchmarks/' throughput settings
// (1 MB batches, 50,000 records buffered, acks 1 without idempotence) and
// opts, closed when the benchmark ends.
func benchProducer(b *testing.B, c producer.Client, opts ...producer.Opt) *producer.Producer {
	p, err := producer.New(c, append([]producer.Opt{producer.BatchMaxBytes(1_000_000),
		producer.Acks(producer.AcksLeader), producer.DisableIdempotence(), producer.MaxBufferedRecords(50_000)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

// produceLoop produces a record of value(i) to topic "t" per iteration,
// as a caller would (a new *record.Record each), then flushes, and fails
// the benchmark if a record failed.
func produceLoop(b *testing.B, p *producer.Producer, value func(i int) []byte) {
	ctx := context.Background()
	var failed atomic.Int64
	promise := func(_ *record.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(value(0))))
	i := 0
	for b.Loop() {
		p.Produce(ctx, &record.Record{Topic: "t", Value: value(i)}, promise)
		i++
	}
	if err := p.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d records failed", n)
	}
}

// BenchmarkProduce measures Produce of 100 B values without keys, one
// *record.Record allocated per call as a caller would, with 1 MB batches
// and 50,000 records buffered (the throughput settings of benchmarks/),
// with linger 10 ms (benchmarks/' setting) or 0 (the default: batches grow
// only while a request is in flight), to a client that discards the
// batches (client=discard: the producer alone) or to an in-memory broker
// without fsync (client=broker).
func BenchmarkProduce(b *testing.B) {
	value := make([]byte, 100)
	for _, tc := range []struct {
		client string
		linger time.Duration
	}{{"discard", 10 * time.Millisecond}, {"broker", 10 * time.Millisecond}, {"discard", 0}, {"broker", 0}} {
		b.Run(fmt.Sprintf("client=%s/linger=%v", tc.client, tc.linger), func(b *testing.B) {
			var c producer.Client = &discard{}
			if tc.client == "broker" {
				c = benchBroker(b)
			}
			p := benchProducer(b, c, producer.Linger(tc.linger))
			produceLoop(b, p, func(int) []byte { return value })
		})
	}
}

// BenchmarkProduceCompressed is BenchmarkProduce's client=broker (linger
// 10 ms) with compression: the producer compresses each batch, and the
// broker decompresses it to check its records (as Kafka's broker does).
// The 100 B values are JSON-like text, alike but not equal: benchValues
// of them, more than a batch holds, so that no value comes twice in a
// batch (a codec would find the repeat). Each codec
// runs at its default level (level=default: no CompressionLevel) and at
// level 1 (Kafka's numbering: gzip's and zstd's fastest, lz4's slowest
// but one, its HC compressor). The ratio metric is the records'
// uncompressed size over their compressed size in a batch of 10,000 of
// the values (1 MB, BatchMaxBytes) at that level: batches lingered for
// 10 ms may be smaller, and compress a little less.
func BenchmarkProduceCompressed(b *testing.B) {
	values := jsonValues(benchValues)
	for _, codec := range []compression.Codec{compression.LZ4, compression.Zstd, compression.Gzip} {
		for _, level := range []string{"default", "1"} {
			b.Run(fmt.Sprintf("codec=%v/level=%s", codec, level), func(b *testing.B) {
				opts := []producer.Opt{producer.Linger(10 * time.Millisecond), producer.Compression(codec)}
				lv := codec.DefaultLevel()
				if level != "default" {
					lv = 1
					opts = append(opts, producer.CompressionLevel(lv))
				}
				p := benchProducer(b, benchBroker(b), opts...)
				produceLoop(b, p, func(i int) []byte { return values[i%len(values)] })
				b.ReportMetric(batchRatio(b, values, codec, lv), "ratio")
			})
		}
	}
}

// benchValues is how many distinct values BenchmarkProduceCompressed
// produces in turn: more than the 10,000 or so of its 1 MB batches, so
// that none repeats within a batch. (Until 2026-12-05 it produced 1,024
// in turn, which zstd found again within a batch: a ratio of 37, where
// values that do not repeat give about a tenth of that.)
const benchValues = 1 << 14

// jsonValues returns n JSON-like values of 100 bytes each, with fields
// drawn from a fixed seed: ids, customers and amounts as an order
// service might write them, alike in shape but not in content.
func jsonValues(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	items := []string{`"book","pen"`, `"cups","mug"`, `"caps","map"`, `"teas","jam"`}
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, `{"id":%08d,"customer":"cust-%07d","items":[%s],"amount_cents":%09d,"pad":"xx"}`,
			rng.IntN(100_000_000), rng.IntN(977), items[rng.IntN(len(items))], rng.IntN(100_000))
	}
	return values
}

// batchRatio returns the records' uncompressed size over their size
// compressed with codec at level, in a batch of 10,000 records of values
// in turn.
func batchRatio(b *testing.B, values [][]byte, codec compression.Codec, level int) float64 {
	var bld record.Builder
	for i := range 10_000 {
		bld.Append(0, nil, values[i%len(values)], nil)
	}
	plain := bld.Size() - record.HeaderSize
	batch, err := bld.AppendToLevel(nil, codec, level)
	if err != nil {
		b.Fatal(err)
	}
	return float64(plain) / float64(len(batch)-record.HeaderSize)
}

// BenchmarkProduceCtx is BenchmarkProduce's client=discard with records
// produced under a ctx that may end, where context.Background costs
// nothing: one shared by every record (a server's: ctx=shared), or one of
// 1024 made beforehand, a different one for each record (a request's:
// ctx=distinct, without the cost of making it). It measures what a
// record's ctx costs the producer: its place beside the batch, the check
// when the batch is sealed, and with a linger the AfterFunc that watches
// it (one per run of records with the same ctx).
func BenchmarkProduceCtx(b *testing.B) {
	value := make([]byte, 100)
	for _, linger := range []time.Duration{10 * time.Millisecond, 0} {
		for _, kind := range []string{"shared", "distinct"} {
			b.Run(fmt.Sprintf("linger=%v/ctx=%s", linger, kind), func(b *testing.B) {
				p, err := producer.New(&discard{}, producer.Linger(linger), producer.BatchMaxBytes(1_000_000),
					producer.Acks(producer.AcksLeader), producer.DisableIdempotence(), producer.MaxBufferedRecords(50_000))
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				ctxs := make([]context.Context, 1)
				if kind == "distinct" {
					ctxs = make([]context.Context, 1024)
				}
				for i := range ctxs {
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					ctx.Done() // made once, as a request's would be before it produces
					ctxs[i] = ctx
				}
				var failed atomic.Int64
				promise := func(_ *record.Record, err error) {
					if err != nil {
						failed.Add(1)
					}
				}
				b.ReportAllocs()
				b.SetBytes(int64(len(value)))
				i := 0
				for b.Loop() {
					p.Produce(ctxs[i%len(ctxs)], &record.Record{Topic: "t", Value: value}, promise)
					i++
				}
				if err := p.Flush(context.Background()); err != nil {
					b.Fatal(err)
				}
				if n := failed.Load(); n > 0 {
					b.Fatalf("%d records failed", n)
				}
			})
		}
	}
}

// countingBroker counts the produce requests it serves.
type countingBroker struct {
	*runnel.Broker
	requests atomic.Int64
}

func (c *countingBroker) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.requests.Add(1)
	return c.Broker.Produce(ctx, req)
}

// ProduceAsync is counted too: the producer calls it, not Produce, on a
// Client that has it (the embedded broker's would go uncounted).
func (c *countingBroker) ProduceAsync(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, api.Ack, error) {
	c.requests.Add(1)
	return c.Broker.ProduceAsync(ctx, req)
}

// TestCountingBrokerCountsRequests: BenchmarkBurst's requests/op counts
// what the producer sends, through whichever method it calls.
func TestCountingBrokerCountsRequests(t *testing.T) {
	c := &countingBroker{Broker: newBroker(t, runneltest.Topic("t", 1))}
	p := newProducer(t, c, producer.DefaultTopic("t"))
	require.NoError(t, p.ProduceSync(testCtx(t), &record.Record{Value: []byte("a")}))
	require.EqualValues(t, 1, c.requests.Load())
}

// BenchmarkBurst measures a burst: ProduceSync of 1000 records of 100 B
// with linger 0 to an in-memory broker whose partition's goroutine has
// been waiting for 1 ms (untimed), and reports requests/op, how many
// produce requests carried the 1000 records: with linger 0 a burst is
// still batched while the first request is in flight.
func BenchmarkBurst(b *testing.B) {
	br, err := runnel.Open(runnel.Config{TopicDefaults: log.Config{Sync: log.SyncNever}})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	ctx := context.Background()
	if err := br.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
		b.Fatal(err)
	}
	c := &countingBroker{Broker: br}
	p, err := producer.New(c, producer.Acks(producer.AcksLeader), producer.DisableIdempotence())
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	value := make([]byte, 100)
	recs := make([]*record.Record, 1000)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		for i := range recs {
			recs[i] = &record.Record{Topic: "t", Value: value}
		}
		time.Sleep(time.Millisecond)
		b.StartTimer()
		if err := p.ProduceSync(ctx, recs...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.requests.Load())/float64(b.N), "requests/op")
}

// BenchmarkProduceTopics measures the producer's state of many topics.
// new=N: a new producer produces one record to each of N topics (then
// flushes and closes), so that each record makes a topic's state; it
// reports ns/topic, which stays flat as N grows when adding a topic costs
// the same however many the producer knows. known=N: records produced
// round robin to N topics the producer knows already, past the one it
// looks up first (the first topic produced to): the cost of finding a
// record's topic among N.
func BenchmarkProduceTopics(b *testing.B) {
	ctx := context.Background()
	value := make([]byte, 100)
	for _, n := range []int{1, 100, 1000, 10_000} {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("topic-%05d", i)
		}
		b.Run(fmt.Sprintf("new=%d", n), func(b *testing.B) {
			var failed atomic.Int64
			promise := func(_ *record.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				p, err := producer.New(&discard{}, producer.Acks(producer.AcksLeader), producer.DisableIdempotence())
				if err != nil {
					b.Fatal(err)
				}
				for _, name := range names {
					p.Produce(ctx, &record.Record{Topic: name, Value: value}, promise)
				}
				if err := p.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d records failed", n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/topic")
		})
	}
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("known=%d", n), func(b *testing.B) {
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("topic-%05d", i)
			}
			p := benchProducer(b, &discard{}, producer.Linger(10*time.Millisecond))
			for _, name := range names {
				if err := p.ProduceSync(ctx, &record.Record{Topic: name, Value: value}); err != nil {
					b.Fatal(err)
				}
			}
			var failed atomic.Int64
			promise := func(_ *record.Record, err error) {
				if err != nil {
					failed.Add(1)
				}
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(value)))
			i := 0
			for b.Loop() {
				p.Produce(ctx, &record.Record{Topic: names[1+i%(n-1)], Value: value}, promise)
				i++
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d records failed", n)
			}
		})
	}
}
