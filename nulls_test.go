package runnel_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

type nhClock struct{ ms atomic.Int64 }

func (c *nhClock) Now() time.Time { return time.UnixMilli(c.ms.Load()) }

// nhBytes names a nullable byte slice's shape: nil, empty or its text.
func nhBytes(b []byte) string {
	switch {
	case b == nil:
		return "<nil>"
	case len(b) == 0:
		return "<empty>"
	}
	return fmt.Sprintf("%q", b)
}

func nhShape(r *record.Record) string {
	s := "k=" + nhBytes(r.Key) + " v=" + nhBytes(r.Value) + " h=["
	for _, h := range r.Headers {
		s += h.Key + ":" + nhBytes(h.Value) + ","
	}
	return s + "]"
}

var nhParts = [][]byte{nil, {}, []byte("x")}

var nhHeaders = [][]record.Header{
	nil,
	{},
	{{Key: "a", Value: nil}},
	{{Key: "a", Value: []byte{}}},
	{{Key: "", Value: nil}, {Key: "", Value: []byte{}}, {Key: "a", Value: []byte("1")}},
}

// nhAll is a record of each key, value and headers of nhParts and
// nhHeaders.
func nhAll() []*record.Record {
	var out []*record.Record
	for _, k := range nhParts {
		for _, v := range nhParts {
			for _, h := range nhHeaders {
				out = append(out, &record.Record{Key: k, Value: v, Headers: h})
			}
		}
	}
	return out
}

// TestNullAndEmptyRoundTrip: every combination of a nil, empty or set
// key, value and header value, produced by the producer (idempotent or
// not, each codec), comes back from the consumer as it was produced, nil
// and empty told apart (and no headers, nil or empty, as nil), on disk
// and in memory, and after a reopen; an empty key lands on its hash's
// partition.
func TestNullAndEmptyRoundTrip(t *testing.T) {
	for _, dir := range []bool{false, true} {
		for _, codec := range []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd} {
			for _, idem := range []bool{true, false} {
				t.Run(fmt.Sprintf("disk=%v/%v/idem=%v", dir, codec, idem), func(t *testing.T) {
					ctx := context.Background()
					cfg := runnel.Config{}
					if dir {
						cfg.Dir = testkit.FastTempDir(t)
					}
					b, err := runnel.Open(cfg)
					if err != nil {
						t.Fatal(err)
					}
					if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}); err != nil {
						t.Fatal(err)
					}
					opts := []producer.Opt{producer.Compression(codec)}
					if !idem {
						opts = append(opts, producer.DisableIdempotence())
					}
					p, err := producer.New(b, opts...)
					if err != nil {
						t.Fatal(err)
					}
					recs := nhAll()
					want := map[string]string{}
					for _, r := range recs {
						r.Topic = "t"
					}
					if err := p.ProduceSync(ctx, recs...); err != nil {
						t.Fatal(err)
					}
					p.Close()
					for _, r := range recs {
						want[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = nhShape(r)
						if r.Key != nil && r.Partition != producer.KeyPartition(r.Key, 3) {
							t.Errorf("key %s on partition %d, want %d", nhBytes(r.Key), r.Partition, producer.KeyPartition(r.Key, 3))
						}
					}
					check := func(b *runnel.Broker) {
						c, err := consumer.New(b)
						if err != nil {
							t.Fatal(err)
						}
						defer c.Close()
						for p := int32(0); p < 3; p++ {
							if err := c.Assign("t", p, consumer.Start()); err != nil {
								t.Fatal(err)
							}
						}
						seen := 0
						cctx, cancel := context.WithTimeout(ctx, testkit.HangGuard)
						defer cancel()
						for r, err := range c.Records(cctx) {
							if err != nil {
								t.Fatal(err)
							}
							id := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
							if got := nhShape(r); got != want[id] {
								t.Errorf("%s: got %s, want %s", id, got, want[id])
							}
							if seen++; seen == len(recs) {
								break
							}
						}
					}
					check(b)
					if dir {
						if err := b.Close(); err != nil {
							t.Fatal(err)
						}
						b, err = runnel.Open(cfg)
						if err != nil {
							t.Fatal(err)
						}
						check(b)
					}
					b.Close()
				})
			}
		}
	}
}

type npRec struct {
	key, value []byte
	headers    []record.Header
	offset     int64
}

func npPick(rng *rand.Rand, set string) []byte {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return []byte{}
	}
	return []byte(set + strconv.Itoa(rng.IntN(2)))
}

// TestNullAndEmptyProperty: random produces (the producer, with lost
// responses that its idempotence retries, and runneltest.Produce) of
// keys, values and header values drawn from nil, empty and set, on a
// topic whose policy switches between delete, compact and both, with
// compactions past the delete horizon and reopens; at each check every
// record read is the one produced at its offset, nil and empty told
// apart, and on a topic that was compacted each key's latest record is
// there unless it is a tombstone (an empty value is none). 6 seeds (2
// under -short); RUNNEL_NULLS_PROP=N runs N, RUNNEL_NULLS_PROP_BASE=S
// from S (see testkit.Seeds).
func TestNullAndEmptyProperty(t *testing.T) {
	testkit.Seeds(t, "RUNNEL_NULLS_PROP", 6, 2, runNullsProp)
}

func runNullsProp(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	ctx := context.Background()
	clk := &nhClock{}
	clk.ms.Store(time.Now().UnixMilli())
	cfg := runnel.Config{Clock: clk, MaintenanceInterval: time.Hour, Dir: testkit.FastTempDir(t)}
	if seed%2 == 1 {
		cfg.Dir = ""
	}
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { b.Close() }()
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	tcfg := func(policy log.CleanupPolicy) log.Config {
		return log.Config{CleanupPolicy: policy, SegmentBytes: 300, DeleteRetentionTime: time.Minute, MinCleanableDirtyRatio: 0.01}
	}
	policy := log.Delete
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: tcfg(policy)}); err != nil {
		t.Fatal(err)
	}
	produced := map[int64]*npRec{}
	var order []int64
	compactedOnce := false
	newProducer := func(b *runnel.Broker) (*producer.Producer, *runneltest.Faults) {
		f := runneltest.NewFaults(t, b)
		opts := []producer.Opt{producer.Compression(codecs[rng.IntN(len(codecs))]), producer.RecordPartitioner(producer.ManualPartitioner()), producer.RetryBackoff(time.Millisecond)}
		p, err := producer.New(f, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return p, f
	}
	p, f := newProducer(b)
	defer func() { p.Close() }()
	check := func(step string) {
		c, err := consumer.New(b)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Assign("t", 0, consumer.Start()); err != nil {
			t.Fatal(err)
		}
		got := map[int64]*record.Record{}
		desc, err := b.DescribeTopic(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		hw := desc.Partitions[0].HighWatermark
		cctx, cancel := context.WithTimeout(ctx, testkit.HangGuard)
		defer cancel()
		if hw > desc.Partitions[0].LogStartOffset {
			for r, err := range c.Records(cctx) {
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				got[r.Offset] = r
				if r.Offset >= hw-1 {
					break
				}
				if l, _ := c.Lag("t", 0); l == 0 {
					break
				}
			}
		}
		for o, r := range got {
			w := produced[o]
			if w == nil {
				t.Fatalf("%s: offset %d read, never produced", step, o)
			}
			want := nhShape(&record.Record{Key: w.key, Value: w.value, Headers: w.headers})
			if g := nhShape(r); g != want {
				t.Fatalf("%s: offset %d: got %s, want %s", step, o, g, want)
			}
		}
		if policy&log.Compact != 0 || compactedOnce {
			// The latest of each key (by exact bytes) is there unless a tombstone.
			latest := map[string]int64{}
			for _, o := range order {
				w := produced[o]
				if w.key == nil {
					continue
				}
				latest[string(w.key)] = o
			}
			for k, o := range latest {
				if o < desc.Partitions[0].LogStartOffset {
					continue
				}
				if produced[o].value != nil && got[o] == nil {
					t.Fatalf("%s: latest record of key %q at %d (value %s) missing", step, k, o, nhBytes(produced[o].value))
				}
			}
		}
	}
	for step := 0; step < 60; step++ {
		switch op := rng.IntN(10); {
		case op < 4: // producer
			n := 1 + rng.IntN(6)
			var recs []*record.Record
			for range n {
				r := &record.Record{Topic: "t", Key: npPick(rng, "k"), Value: npPick(rng, "v")}
				if policy&log.Compact != 0 && r.Key == nil {
					r.Key = []byte{}
				}
				for i := range rng.IntN(3) {
					r.Headers = append(r.Headers, record.Header{Key: fmt.Sprint("h", i), Value: npPick(rng, "h")})
				}
				if rng.IntN(4) == 0 {
					r.Headers = []record.Header{}
				}
				recs = append(recs, r)
			}
			var rule *runneltest.Rule
			if rng.IntN(3) == 0 {
				rule = f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
			}
			if err := p.ProduceSync(ctx, recs...); err != nil {
				t.Fatalf("step %d: produce: %v", step, err)
			}
			if rule != nil {
				rule.Remove()
			}
			for _, r := range recs {
				if r.Offset < 0 {
					t.Fatalf("no offset")
				}
				if produced[r.Offset] != nil {
					t.Fatalf("offset %d twice", r.Offset)
				}
				produced[r.Offset] = &npRec{key: r.Key, value: r.Value, headers: r.Headers, offset: r.Offset}
				order = append(order, r.Offset)
			}
		case op < 5: // runneltest.Produce
			r := &record.Record{Key: npPick(rng, "k"), Value: npPick(rng, "v")}
			if policy&log.Compact != 0 && r.Key == nil {
				r.Key = []byte{}
			}
			if rng.IntN(2) == 0 {
				r.Headers = []record.Header{{Key: "", Value: npPick(rng, "h")}}
			}
			runneltest.Produce(t, b, "t", r)
			produced[r.Offset] = &npRec{key: r.Key, value: r.Value, headers: r.Headers, offset: r.Offset}
			order = append(order, r.Offset)
		case op < 7:
			clk.ms.Add(int64(rng.IntN(90)) * 1000)
			if err := b.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
			if policy&log.Compact != 0 {
				compactedOnce = true
			}
		case op < 8: // policy change
			old := policy
			policy = []log.CleanupPolicy{log.Delete, log.Compact, log.Compact | log.Delete}[rng.IntN(3)]
			if old == policy {
				break
			}
			if err := b.AlterTopicConfig(ctx, "t", tcfg(policy)); err != nil {
				t.Fatal(err)
			}
		case op < 9:
			if cfg.Dir == "" {
				break
			}
			p.Close()
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			b, err = runnel.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, f = newProducer(b)
		default:
			check(fmt.Sprint("step ", step))
		}
	}
	check("end")
	// Past every delete horizon, with something dirty for a pass to run:
	// records of keys of their own, enough to roll the segment, twice
	// (the first pass gives the tombstones their horizon, the second
	// removes them).
	for range 2 {
		clk.ms.Add(int64(5 * time.Minute / time.Millisecond))
		for i := range 8 {
			r := &record.Record{Topic: "t", Key: []byte(fmt.Sprint("z", i)), Value: make([]byte, 40)}
			if err := p.ProduceSync(ctx, r); err != nil {
				t.Fatal(err)
			}
			produced[r.Offset] = &npRec{key: r.Key, value: r.Value, offset: r.Offset}
			order = append(order, r.Offset)
		}
		if err := b.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		check("end, maintained")
	}
}
