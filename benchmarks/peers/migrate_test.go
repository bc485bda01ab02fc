// Migration tests: typical unit tests written against franz-go's kfake
// and kgo, as people write them, each next to its runneltest equivalent,
// asserting the same outcome. They keep the "Coming from kfake" section
// of runneltest's package doc true: each kfake call it maps has its
// runneltest counterpart exercised here. Run them alone with
// `go test -run Migrate` in this module.
//
// One difference underlies them all: kfake speaks Kafka's wire protocol,
// so the code under test keeps its *kgo.Client; runnel has no wire
// protocol (yet), so code under test must produce through
// runnel's producer (or an interface of its own that both satisfy) to be
// tested with runneltest. Each pair below therefore has a kgo and a
// runnel version of the same small piece of "code under test".

package peers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// newKfake is the helper most kfake users write: a cluster closed by
// t.Cleanup and a client on it.
func newKfake(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return c, cl
}

// pollKgo reads n records with a kgo consumer from the start of topic,
// failing the test when they do not come within d: what kfake users
// write by hand for each test (runneltest.Consume does it).
func pollKgo(t *testing.T, c *kfake.Cluster, topic string, n int, d time.Duration) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var got []*kgo.Record
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records within %v", len(got), n, d)
		}
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fs.Records()...)
	}
	// kgo returns partitions in no set order: sort as runneltest does.
	slices.SortStableFunc(got, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return got
}

func kgoValues(recs []*kgo.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

func runnelValues(recs []*record.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = string(r.Value)
	}
	return out
}

// 1. Seed topics, produce, consume everything.
func TestMigrateSeedProduceConsume(t *testing.T) {
	want := []string{"a", "b", "c"}
	t.Run("kfake", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(2, "orders", "audit"))
		ctx := context.Background()
		for _, v := range want {
			r := &kgo.Record{Topic: "orders", Partition: 0, Value: []byte(v)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if got := kgoValues(pollKgo(t, c, "orders", 3, 10*time.Second)); !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 2), runneltest.Topic("audit", 2))
		runneltest.ProduceValues(t, b, "orders", want...)
		// ConsumeAll: exactly what is there, without waiting; kgo has no
		// way to say "and nothing else" short of listing end offsets.
		if got := runnelValues(runneltest.ConsumeAll(t, b, "orders")); !slices.Equal(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		if got := runneltest.ConsumeAll(t, b, "audit"); len(got) != 0 {
			t.Fatalf("audit: %d records", len(got))
		}
	})
}

// 2. Code under test produces in the background; the test reads what it
// produced, with a deadline.
func TestMigrateConsumeWithDeadline(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(3, "signups"))
		// Code under test: async produce, no waiting.
		for _, u := range []string{"ada", "bob"} {
			cl.Produce(context.Background(), &kgo.Record{Topic: "signups", Key: []byte(u), Value: []byte("welcome " + u)}, nil)
		}
		got := pollKgo(t, c, "signups", 2, 5*time.Second)
		if len(got) != 2 {
			t.Fatalf("got %d records", len(got))
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("signups", 3))
		p := runneltest.NewProducer(t, b)
		for _, u := range []string{"ada", "bob"} {
			p.Produce(context.Background(), &record.Record{Topic: "signups", Key: []byte(u), Value: []byte("welcome " + u)}, nil)
		}
		got := runneltest.Consume(t, b, "signups", 2, runneltest.Timeout(5*time.Second))
		if len(got) != 2 {
			t.Fatalf("got %d records", len(got))
		}
	})
}

// 3. Keyed records land on the partition kgo's default partitioner picks.
func TestMigrateKeyedPartitions(t *testing.T) {
	keys := []string{"ada", "bob", "carol", "dave", "eve", "frank", "grace", "heidi"}
	const parts = 6
	kgoParts := make(map[string]int32)
	t.Run("kfake", func(t *testing.T) {
		_, cl := newKfake(t, kfake.SeedTopics(parts, "users"))
		for _, k := range keys {
			r := &kgo.Record{Topic: "users", Key: []byte(k), Value: []byte("v")}
			if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			kgoParts[k] = r.Partition
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		if len(kgoParts) != len(keys) {
			t.Skip("the kfake half did not run")
		}
		b := runneltest.NewBroker(t, runneltest.Topic("users", parts))
		// Through the helper (no producer), and through the producer with
		// its defaults: both hash keys as kgo does.
		for _, k := range keys {
			runneltest.Produce(t, b, "users", &record.Record{Key: []byte(k), Value: []byte("v")})
		}
		p := runneltest.NewProducer(t, b)
		for _, k := range keys {
			r := &record.Record{Topic: "users", Key: []byte(k), Value: []byte("v")}
			if err := p.ProduceSync(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if r.Partition != kgoParts[k] {
				t.Errorf("producer: key %q on partition %d, kgo's %d", k, r.Partition, kgoParts[k])
			}
		}
		for _, r := range runneltest.ConsumeAll(t, b, "users") {
			if r.Partition != kgoParts[string(r.Key)] {
				t.Errorf("key %q on partition %d, kgo's %d", r.Key, r.Partition, kgoParts[string(r.Key)])
			}
		}
	})
}

// 4. A test that needs an error from the broker.
//
// kfake intercepts any request (ControlKey, or the Fault shorthand) and
// answers what the test likes. runnel intercepts what its producer and
// consumer ask of the broker: a test hands them a runneltest.Faults over
// the broker and adds rules to it; it gets the broker's real errors by
// causing them (a record over the topic's max.message.bytes, an unknown
// topic, a deleted topic).
func TestMigrateBrokerErrors(t *testing.T) {
	t.Run("kfake/retriable produce error", func(t *testing.T) {
		c, _ := newKfake(t, kfake.SeedTopics(1, "orders"))
		// kgo refreshes metadata before it retries NOT_LEADER, at most
		// every MetadataMinAge (5 s by default): without this, the test
		// takes 5 s.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MetadataMinAge(10*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var hits atomic.Int32
		c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			hits.Add(1)
			return kfakeProduceError(kreq.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code), nil, true // handled once, then dropped
		})
		r := &kgo.Record{Topic: "orders", Value: []byte("x")}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if hits.Load() != 1 || r.Offset != 0 {
			t.Fatalf("hits %d, offset %d", hits.Load(), r.Offset)
		}
	})
	t.Run("runneltest/retriable produce error", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		rule := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders",
			Err: api.ForCode(kerr.NotLeaderForPartition.Code), Count: 1})
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
		r := &record.Record{Topic: "orders", Value: []byte("x")}
		if err := p.ProduceSync(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if rule.Hits() != 1 || r.Offset != 0 {
			t.Fatalf("hits %d, offset %d", rule.Hits(), r.Offset)
		}
	})

	// The answer is lost after the broker appended: the producer retries,
	// and idempotence keeps one copy.
	t.Run("kfake/timeout after append", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "orders", Err: kerr.RequestTimedOut})
		r := &kgo.Record{Topic: "orders", Value: []byte("x")}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if got := kgoEnds(t, cl, "orders", 1)[0]; got != 1 || r.Offset != 0 {
			t.Fatalf("end offset %d, record at %d", got, r.Offset)
		}
	})
	t.Run("runneltest/timeout after append", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		lost := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders",
			Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
		r := &record.Record{Topic: "orders", Value: []byte("x")}
		if err := p.ProduceSync(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if got := runneltest.ConsumeAll(t, b, "orders"); len(got) != 1 || r.Offset != 0 || lost.Hits() != 1 {
			t.Fatalf("%d records, record at %d, %d answers lost", len(got), r.Offset, lost.Hits())
		}
	})

	// A request held until the test lets it go: to test timeouts, and
	// what happens meanwhile.
	t.Run("kfake/held produce", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		held, release := make(chan struct{}), make(chan struct{})
		var calls atomic.Int32
		c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
			if calls.Add(1) == 1 {
				close(held)
				c.SleepControl(func() { <-release })
			}
			return nil, nil, false // not handled: the cluster answers it
		})
		done := make(chan error, 1)
		go func() {
			done <- cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr()
		}()
		<-held
		select {
		case err := <-done:
			t.Fatalf("delivered while held: %v", err)
		default:
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("runneltest/held produce", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
		p := runneltest.NewProducer(t, f)
		done := make(chan error, 1)
		go func() {
			done <- p.ProduceSync(context.Background(), &record.Record{Topic: "orders", Value: []byte("x")})
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hold.Wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("delivered while held: %v", err)
		default:
		}
		hold.Remove() // releases it
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kfake/fatal produce error", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		// The Fault shorthand of recent kfake versions.
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "orders", Err: kerr.MessageTooLarge})
		err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("runneltest/fatal produce error", func(t *testing.T) {
		// The real thing: a record over the topic's max.message.bytes.
		b := runneltest.NewBroker(t, runneltest.TopicConfig("orders",
			log.TopicConfig{Partitions: 1, Config: log.Config{MaxMessageBytes: 100}}))
		p := runneltest.NewProducer(t, b)
		err := p.ProduceSync(context.Background(), &record.Record{Topic: "orders", Value: make([]byte, 200)})
		if !errors.Is(err, log.ErrRecordTooLarge) {
			t.Fatalf("got %v", err)
		}
		if api.Code(err) != kerr.MessageTooLarge.Code {
			t.Fatalf("code %d", api.Code(err))
		}
	})

	t.Run("kfake/unknown topic", func(t *testing.T) {
		_, cl := newKfake(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// kgo retries an unknown topic until the record's context ends
		// (or kgo.UnknownTopicRetries, 4 by default).
		err := cl.ProduceSync(ctx, &kgo.Record{Topic: "nope", Value: []byte("x")}).FirstErr()
		if !errors.Is(err, kerr.UnknownTopicOrPartition) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("runneltest/unknown topic", func(t *testing.T) {
		b := runneltest.NewBroker(t) // auto-create off, as kfake's default
		p := runneltest.NewProducer(t, b)
		err := p.ProduceSync(context.Background(), &record.Record{Topic: "nope", Value: []byte("x")})
		if !errors.Is(err, runnel.ErrUnknownTopic) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("kfake/fetch error", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "orders", Err: kerr.TopicAuthorizationFailed, Count: -1})
		cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("orders"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("runneltest/fetch error", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		runneltest.ProduceValues(t, b, "orders", "x")
		f := runneltest.NewFaults(t, b)
		// As kfake's Fault without TopLevel, the partition's answer holds
		// the error (FailRequest would fail the whole Fetch: Poll's error).
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders",
			Action: runneltest.FailPartitions, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited}) // Count 0: until removed
		c := runneltest.NewConsumer(t, f)
		if err := c.Assign("orders", 0, consumer.Start()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs, err := c.Poll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Err(); !errors.Is(err, api.ErrPolicyViolation) {
			t.Fatalf("got %v", err)
		}
	})
}

// 5. Offsets and lag: where a partition starts and ends, and how far a
// consumer is behind.
func TestMigrateOffsetsAndLag(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		c, _ := newKfake(t, kfake.SeedTopics(2, "events"))
		// kgo's default partitioner ignores Record.Partition.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx := context.Background()
		for i := range 5 {
			r := &kgo.Record{Topic: "events", Partition: int32(i % 2), Value: []byte("v")}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		// End offsets: kadm.ListEndOffsets, from another module, or a raw
		// ListOffsets request.
		ends := kgoEnds(t, cl, "events", 2)
		if ends[0] != 3 || ends[1] != 2 {
			t.Fatalf("ends %v", ends)
		}
		// A consumer that read one record of partition 0 lags 2 there.
		cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			"events": {0: kgo.NewOffset().AtStart()},
		}), kgo.FetchMaxPartitionBytes(1))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		fs := cons.PollRecords(pctx, 1)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		recs := fs.Records()
		if len(recs) != 1 {
			t.Fatalf("%d records", len(recs))
		}
		if lag := ends[0] - (recs[0].Offset + 1); lag != 2 {
			t.Fatalf("lag %d", lag)
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("events", 2))
		for i := range 5 {
			runneltest.Produce(t, b, "events", &record.Record{Partition: int32(i % 2), Value: []byte("v")})
		}
		// End offsets: the high watermarks DescribeTopic lists (or
		// b.ListOffset(ctx, topic, p, api.Latest), one partition a call).
		info, err := b.DescribeTopic(context.Background(), "events")
		if err != nil {
			t.Fatal(err)
		}
		ends := map[int32]int64{}
		for _, p := range info.Partitions {
			ends[p.Partition] = p.HighWatermark
		}
		if ends[0] != 3 || ends[1] != 2 {
			t.Fatalf("ends %v", ends)
		}
		c := runneltest.NewConsumer(t, b)
		if err := c.Assign("events", 0, consumer.Start()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for _, err := range c.Records(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			break // one record
		}
		pos, _ := c.Position("events", 0)
		if lag := ends[0] - pos; lag != 2 {
			t.Fatalf("lag %d", lag)
		}
	})
}

// 6. Headers and timestamps survive the round trip.
func TestMigrateHeadersTimestamps(t *testing.T) {
	t0 := time.Date(2020, 1, 2, 3, 4, 5, 6e6, time.UTC) // ms precision; years old
	t.Run("kfake", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "traced"))
		r := &kgo.Record{Topic: "traced", Value: []byte("v"), Timestamp: t0, Headers: []kgo.RecordHeader{
			{Key: "trace-id", Value: []byte("abc")}, {Key: "empty", Value: []byte{}}, {Key: "null"}, {Key: "trace-id", Value: []byte("again")},
		}}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		got := pollKgo(t, c, "traced", 1, 5*time.Second)[0]
		if !got.Timestamp.Equal(t0) {
			t.Fatalf("timestamp %v", got.Timestamp)
		}
		if fmt.Sprint(got.Headers) != fmt.Sprint(r.Headers) || got.Headers[1].Value == nil || got.Headers[2].Value != nil {
			t.Fatalf("headers %v", got.Headers)
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("traced", 1))
		r := &record.Record{Value: []byte("v"), Timestamp: t0, Headers: []record.Header{
			{Key: "trace-id", Value: []byte("abc")}, {Key: "empty", Value: []byte{}}, {Key: "null"}, {Key: "trace-id", Value: []byte("again")},
		}}
		runneltest.Produce(t, b, "traced", r)
		got := runneltest.ConsumeAll(t, b, "traced")[0]
		if !got.Timestamp.Equal(t0) {
			t.Fatalf("timestamp %v", got.Timestamp)
		}
		if fmt.Sprint(got.Headers) != fmt.Sprint(r.Headers) || got.Headers[1].Value == nil || got.Headers[2].Value != nil {
			t.Fatalf("headers %v", got.Headers)
		}
	})
}

// 7. Broker settings a kfake test reaches for: auto-created topics and
// their partition count, retention applied on demand, and a consumer
// that starts at the end (only what is produced after it started).
func TestMigrateBrokerSettings(t *testing.T) {
	old := time.Now().Add(-2 * time.Hour)
	t.Run("kfake", func(t *testing.T) {
		c, _ := newKfake(t, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(3),
			kfake.BrokerConfigs(map[string]string{"log.retention.ms": "3600000"}))
		// The client must ask for auto-creation too.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.AllowAutoTopicCreation(),
			kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx := context.Background()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Value: []byte("old"), Timestamp: old}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Partition: 2, Value: []byte("new")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		c.ApplyRetention() // past log.retention.ms: "old" goes
		if got := kgoValues(pollKgo(t, c, "auto", 1, 5*time.Second)); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("got %q", got)
		}

		// From the end: the records produced after this point. kgo's
		// AtEnd is resolved by the consumer's first fetch, at a time the
		// test does not know, so take the end offset first.
		end := kgoEnds(t, cl, "auto", 3)[2]
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "auto", Partition: 2, Value: []byte("newer")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			"auto": {2: kgo.NewOffset().At(end)},
		}))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		fs := cons.PollRecords(pctx, 1)
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		if got := kgoValues(fs.Records()); !slices.Equal(got, []string{"newer"}) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{
			AutoCreateTopics: true, DefaultPartitions: 3,
			TopicDefaults: log.Config{RetentionTime: time.Hour},
		}))
		p := runneltest.NewProducer(t, b, producer.RecordPartitioner(producer.ManualPartitioner()))
		ctx := context.Background()
		if err := p.ProduceSync(ctx, &record.Record{Topic: "auto", Value: []byte("old"), Timestamp: old}); err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &record.Record{Topic: "auto", Partition: 2, Value: []byte("new")}); err != nil {
			t.Fatal(err)
		}
		if n, err := b.Partitions(ctx, "auto"); err != nil || n != 3 {
			t.Fatalf("auto-created with %d partitions: %v", n, err)
		}
		if err := b.Maintain(ctx); err != nil { // past the retention time: "old" goes
			t.Fatal(err)
		}
		if got := runnelValues(runneltest.ConsumeAll(t, b, "auto")); !slices.Equal(got, []string{"new"}) {
			t.Fatalf("got %q", got)
		}

		// From the end: consumer.End is looked up by the first Poll, as
		// kgo's AtEnd, so take the end offset first.
		end, err := b.ListOffset(ctx, "auto", 2, api.Latest)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.ProduceSync(ctx, &record.Record{Topic: "auto", Partition: 2, Value: []byte("newer")}); err != nil {
			t.Fatal(err)
		}
		c := runneltest.NewConsumer(t, b)
		if err := c.Assign("auto", 2, consumer.At(end.Offset)); err != nil {
			t.Fatal(err)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		fs, err := c.Poll(pctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for r, err := range fs.Records() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(r.Value))
		}
		if !slices.Equal(got, []string{"newer"}) {
			t.Fatalf("got %q", got)
		}
	})
}

// kgoEnds lists the end offsets of topic's partitions with a raw
// ListOffsets request.
func kgoEnds(t *testing.T, cl *kgo.Client, topic string, parts int32) map[int32]int64 {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[int32]int64{}
	for _, p := range resp.Topics[0].Partitions {
		if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
			t.Fatal(err)
		}
		ends[p.Partition] = p.Offset
	}
	return ends
}

// 7. Fault patterns of kfake's own tests and of its users' (ControlKey
// with KeepControl and a counter, SleepControl, Fault with Partitions),
// each ported to a runneltest.Faults.

// pollRunnel polls c until it holds n records or d passes, failing the
// test on a Poll error: for a test that goes on with a consumer it
// already polled (runneltest.Consume reads through a Faults too, but
// with a consumer of its own, from the start, at each call).
func pollRunnel(t *testing.T, c *consumer.Consumer, n int, d time.Duration) []*record.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var got []*record.Record
	for len(got) < n {
		fs, err := c.Poll(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records within %v", len(got), n, d)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := fs.Err(); err != nil {
			t.Fatal(err)
		}
		for r, err := range fs.Records() {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, r)
		}
	}
	return got
}

func TestMigrateFaultPatterns(t *testing.T) {
	// kfake's consumer tests fail the first ListOffsets a consumer
	// makes at its start (ControlKey + KeepControl + a once flag) and
	// check that it retries and reads everything.
	t.Run("kfake/list offsets fails at start", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		for _, v := range []string{"a", "b"} {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "orders",
			Err: kerr.NotLeaderForPartition, Count: 2})
		cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("orders"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(10*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var got []*kgo.Record
		for len(got) < 2 {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("got %d of 2 records", len(got))
			}
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			got = append(got, fs.Records()...)
		}
		if v := kgoValues(got); !slices.Equal(v, []string{"a", "b"}) || h.Hits() != 2 {
			t.Fatalf("got %q, %d hits", v, h.Hits())
		}
	})
	t.Run("runneltest/list offsets fails at start", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		runneltest.ProduceValues(t, b, "orders", "a", "b")
		f := runneltest.NewFaults(t, b)
		h := f.Add(runneltest.Fault{Op: runneltest.OpListOffset, Topic: "orders", Err: api.ErrNotLeader, Count: 2})
		// Consume reads through f, its consumer retrying quietly.
		got := runneltest.Consume(t, f, "orders", 2, runneltest.Timeout(5*time.Second))
		if v := runnelValues(got); !slices.Equal(v, []string{"a", "b"}) || h.Hits() != 2 {
			t.Fatalf("got %q, %d hits", v, h.Hits())
		}
	})

	// An error on the Nth produce request only, and a count of the
	// requests the client made: a ControlKey that counts every request
	// and answers the Nth itself.
	t.Run("kfake/second produce fails, requests counted", func(t *testing.T) {
		c, _ := newKfake(t, kfake.SeedTopics(1, "orders"))
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.MetadataMinAge(10*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var n atomic.Int32
		c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			if n.Add(1) != 2 {
				return nil, nil, false
			}
			return kfakeProduceError(kreq.(*kmsg.ProduceRequest), kerr.NotLeaderForPartition.Code), nil, true
		})
		var offsets []int64
		for _, v := range []string{"a", "b", "c"} {
			r := &kgo.Record{Topic: "orders", Value: []byte(v)}
			if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			offsets = append(offsets, r.Offset)
		}
		if !slices.Equal(offsets, []int64{0, 1, 2}) || n.Load() != 4 {
			t.Fatalf("offsets %v, %d produce requests", offsets, n.Load())
		}
	})
	t.Run("runneltest/second produce fails, requests counted", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		// Observe counts every produce request and lets it go on; the
		// second rule lets the first request by (Skip) and fails the
		// second, once.
		seen := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.Observe, Count: runneltest.Unlimited})
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "orders", Err: api.ErrNotLeader, Skip: 1, Count: 1})
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
		var offsets []int64
		for _, v := range []string{"a", "b", "c"} {
			r := &record.Record{Topic: "orders", Value: []byte(v)}
			if err := p.ProduceSync(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			offsets = append(offsets, r.Offset)
		}
		if !slices.Equal(offsets, []int64{0, 1, 2}) || seen.Hits() != 4 {
			t.Fatalf("offsets %v, %d produce requests", offsets, seen.Hits())
		}
	})

	// A fetch held past the poll's deadline (SleepControl in a
	// ControlKey): the poll ends with its ctx's error, and the records
	// come once the fetch is let go.
	t.Run("kfake/fetch held past poll deadline", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		var once atomic.Bool
		c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
			if !once.Swap(true) {
				c.SleepControl(func() { <-release })
			}
			return nil, nil, false
		})
		cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("orders"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		defer func() {
			if !once.Load() {
				return
			}
			select {
			case <-release:
			default:
				close(release)
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		fs := cons.PollFetches(ctx)
		if err := fs.Err(); !errors.Is(err, context.DeadlineExceeded) || len(fs.Records()) != 0 {
			t.Fatalf("got %d records, %v", len(fs.Records()), err)
		}
		close(release)
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		fs = cons.PollFetches(ctx2)
		if err := fs.Err(); err != nil || len(fs.Records()) != 1 {
			t.Fatalf("got %d records, %v", len(fs.Records()), err)
		}
	})
	t.Run("runneltest/fetch held past poll deadline", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		runneltest.ProduceValues(t, b, "orders", "x")
		f := runneltest.NewFaults(t, b)
		hold := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Action: runneltest.HoldRequest, Count: 1})
		defer hold.Remove()
		c := runneltest.NewConsumer(t, f)
		if err := c.Assign("orders", 0, consumer.Start()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		fs, err := c.Poll(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || fs.NumRecords() != 0 {
			t.Fatalf("got %d records, %v", fs.NumRecords(), err)
		}
		hold.Remove()
		got := pollRunnel(t, c, 1, 5*time.Second)
		if len(got) != 1 || hold.Hits() != 1 {
			t.Fatalf("got %d records, %d held", len(got), hold.Hits())
		}
	})

	// The producer id the idempotent producer asks for first fails
	// once (kfake's Fault on InitProducerID, Count 0: one request).
	t.Run("kfake/init producer id fails once", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.RequestTimedOut})
		r := &kgo.Record{Topic: "orders", Value: []byte("x")}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if h.Hits() != 1 || r.Offset != 0 || r.ProducerID < 0 {
			t.Fatalf("%d hits, offset %d, producer id %d", h.Hits(), r.Offset, r.ProducerID)
		}
	})
	t.Run("runneltest/init producer id fails once", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		h := f.Add(runneltest.Fault{Op: runneltest.OpInitProducerID, Err: api.ErrRequestTimedOut, Count: 1})
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
		r := &record.Record{Topic: "orders", Value: []byte("x")}
		if err := p.ProduceSync(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if h.Hits() != 1 || r.Offset != 0 {
			t.Fatalf("%d hits, offset %d", h.Hits(), r.Offset)
		}
	})

	// One partition's fetch fails (kfake's Fault with Partitions, as in
	// its TestFaultPartition) while the others go on.
	t.Run("kfake/one partition fails, others progress", func(t *testing.T) {
		c, _ := newKfake(t, kfake.SeedTopics(2, "orders"))
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for p := range int32(2) {
			for _, v := range []string{"a", "b"} {
				r := &kgo.Record{Topic: "orders", Partition: p, Value: []byte(fmt.Sprint(p, v))}
				if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
					t.Fatal(err)
				}
			}
		}
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "orders", Partitions: []int32{1},
			Err: kerr.NotLeaderForPartition, Count: -1})
		cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("orders"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(10*time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var got []string
		for len(got) < 2 {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("got %q", got)
			}
			got = append(got, kgoValues(fs.Records())...)
		}
		if !slices.Equal(got, []string{"0a", "0b"}) || h.Hits() == 0 {
			t.Fatalf("got %q while partition 1 failed (%d hits)", got, h.Hits())
		}
		h.Remove()
		for len(got) < 4 {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("got %q", got)
			}
			got = append(got, kgoValues(fs.Records())...)
		}
		if !slices.Equal(got, []string{"0a", "0b", "1a", "1b"}) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("runneltest/one partition fails, others progress", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
		for p := range int32(2) {
			for _, v := range []string{"a", "b"} {
				runneltest.Produce(t, b, "orders", &record.Record{Partition: p, Value: []byte(fmt.Sprint(p, v))})
			}
		}
		f := runneltest.NewFaults(t, b)
		h := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "orders", Partitions: []int32{1},
			Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
		// Consume reads through f: partition 1's retriable error is
		// retried quietly while partition 0 is read.
		got := runnelValues(runneltest.Consume(t, f, "orders", 2, runneltest.Timeout(5*time.Second)))
		if !slices.Equal(got, []string{"0a", "0b"}) || h.Hits() == 0 {
			t.Fatalf("got %q while partition 1 failed (%d hits)", got, h.Hits())
		}
		h.Remove()
		got = runnelValues(runneltest.ConsumeAll(t, f, "orders"))
		if !slices.Equal(got, []string{"0a", "0b", "1a", "1b"}) {
			t.Fatalf("got %q", got)
		}
	})

	// Only the produce request that carries a record with key "poison"
	// fails, with an error no client retries (a ControlKey that decodes
	// the request's batches, and answers the one it wants with an error):
	// the records around it are written.
	t.Run("kfake/poison key fails its request", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "orders"))
		var hits atomic.Int32
		c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			req := kreq.(*kmsg.ProduceRequest)
			for _, rt := range req.Topics {
				for _, rp := range rt.Partitions {
					var b kmsg.RecordBatch
					if err := b.ReadFrom(rp.Records); err != nil {
						continue
					}
					recs, err := kfake.BatchRecords(b)
					if err != nil {
						continue
					}
					if slices.ContainsFunc(recs, func(r kmsg.Record) bool { return string(r.Key) == "poison" }) {
						hits.Add(1)
						return kfakeProduceError(req, kerr.InvalidRecord.Code), nil, true
					}
				}
			}
			return nil, nil, false
		})
		var errs []error
		for _, k := range []string{"a", "poison", "b"} {
			errs = append(errs, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Key: []byte(k), Value: []byte(k)}).FirstErr())
		}
		if errs[0] != nil || !errors.Is(errs[1], kerr.InvalidRecord) || errs[2] != nil || hits.Load() != 1 {
			t.Fatalf("errors %v, %d hits", errs, hits.Load())
		}
		if got := kgoValues(pollKgo(t, c, "orders", 2, 5*time.Second)); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("runneltest/poison key fails its request", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 1))
		f := runneltest.NewFaults(t, b)
		poison := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ForCode(kerr.InvalidRecord.Code),
			Count: runneltest.Unlimited, Match: func(req runneltest.Request) bool {
				for r, err := range req.Records() {
					if err == nil && string(r.Key) == "poison" {
						return true
					}
				}
				return false
			}})
		p := runneltest.NewProducer(t, f)
		var errs []error
		for _, k := range []string{"a", "poison", "b"} {
			errs = append(errs, p.ProduceSync(context.Background(), &record.Record{Topic: "orders", Key: []byte(k), Value: []byte(k)}))
		}
		if errs[0] != nil || !errors.Is(errs[1], log.ErrInvalidRecord) || errs[2] != nil || poison.Hits() != 1 {
			t.Fatalf("errors %v, %d hits", errs, poison.Hits())
		}
		if got := runnelValues(runneltest.ConsumeAll(t, b, "orders")); !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("got %q", got)
		}
	})
}

// kfakeProduceError is the answer of a ControlKey that fails every
// partition of a produce request with the error code.
func kfakeProduceError(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID // v13 names topics by ID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// TestMigrateFaultCountsRequests: kfake's Fault Count counts
// requests, and a kgo produce request carries every partition it has
// records for (of one broker): Count 1 fails three partitions' batches
// at once. runnel's producer sends a request per partition, so a Faults
// rule's Count 1 fails one partition's batch; failing each of three
// once takes Count 3 (the Migrate table in runneltest's godoc says so).
func TestMigrateFaultCountsRequests(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		c, _ := newKfake(t, kfake.SeedTopics(3, "t"))
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ProducerLinger(50*time.Millisecond), kgo.MetadataMinAge(10*time.Millisecond),
			kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.RetryBackoffFn(func(int) time.Duration { return time.Millisecond }))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		var parts atomic.Int32 // partitions of every produce request
		c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
			c.KeepControl()
			for _, tp := range kreq.(*kmsg.ProduceRequest).Topics {
				parts.Add(int32(len(tp.Partitions)))
			}
			return nil, nil, false
		})
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.NotLeaderForPartition, Count: 1})
		recs := []*kgo.Record{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if h.Hits() != 1 || parts.Load() != 6 {
			t.Fatalf("%d hits, %d partitions sent (want 1 and 6: each of three failed once)", h.Hits(), parts.Load())
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 3))
		f := runneltest.NewFaults(t, b)
		sent := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.Observe, Count: runneltest.Unlimited})
		r := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "t", Err: api.ErrNotLeader, Count: 1})
		p := runneltest.NewProducer(t, f, producer.Linger(50*time.Millisecond),
			producer.RecordPartitioner(producer.ManualPartitioner()), producer.RetryBackoff(time.Millisecond))
		recs := []*record.Record{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}, {Topic: "t", Partition: 2}}
		if err := p.ProduceSync(context.Background(), recs...); err != nil {
			t.Fatal(err)
		}
		if r.Hits() != 1 || sent.Hits() != 4 {
			t.Fatalf("%d hits, %d partition requests sent (want 1 and 4: one partition failed once)", r.Hits(), sent.Hits())
		}
	})
}

// TestMigrateAfterAppendErrors: kfake answers a produce
// NOT_ENOUGH_REPLICAS_AFTER_APPEND, as REQUEST_TIMED_OUT, after it
// appended the batch; kgo retries, and idempotence keeps one copy.
// runneltest's LoseResponse with api.ForCode of that code does the
// same: the record is once in the log, at the offset its promise got.
func TestMigrateAfterAppendErrors(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "t"))
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "t", Err: kerr.NotEnoughReplicasAfterAppend, Count: 1})
		r := &kgo.Record{Topic: "t", Value: []byte("a")}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		got := pollKgo(t, c, "t", 1, 5*time.Second)
		if h.Hits() != 1 || r.Offset != 0 || len(got) != 1 {
			t.Fatalf("%d hits, offset %d, %d records", h.Hits(), r.Offset, len(got))
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		f := runneltest.NewFaults(t, b)
		h := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "t", Action: runneltest.LoseResponse,
			Err: api.ForCode(kerr.NotEnoughReplicasAfterAppend.Code), Count: 1})
		p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))
		r := &record.Record{Topic: "t", Value: []byte("a")}
		if err := p.ProduceSync(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		got := runneltest.ConsumeAll(t, b, "t")
		if h.Hits() != 1 || r.Offset != 0 || len(got) != 1 {
			t.Fatalf("%d hits, offset %d, %d records", h.Hits(), r.Offset, len(got))
		}
	})
}

// TestMigrateFetchUnknownTopic: kgo strips a fetched partition's
// UNKNOWN_TOPIC_OR_PARTITION and fetches again, without a word, so a
// kfake test that injects one into a fetch reads every record. runnel's
// consumer reports it (for a partition whose position the broker gave,
// it takes the topic for deleted), and runneltest.Consume fails the test
// on it: the runneltest side injects api.ErrNotLeader to be ridden out
// (runneltest's TestKfakeConsumeFailsOnReportedErrors has the
// other side).
func TestMigrateFetchUnknownTopic(t *testing.T) {
	t.Run("kfake", func(t *testing.T) {
		c, cl := newKfake(t, kfake.SeedTopics(1, "t"))
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "t", Value: []byte("a")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "t", Err: kerr.UnknownTopicOrPartition, Count: 1})
		if got := pollKgo(t, c, "t", 1, 10*time.Second); len(got) != 1 || h.Hits() != 1 {
			t.Fatalf("%d records, %d hits", len(got), h.Hits())
		}
	})
	t.Run("runneltest", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		runneltest.ProduceValues(t, b, "t", "a")
		f := runneltest.NewFaults(t, b)
		h := f.Add(runneltest.Fault{Op: runneltest.OpFetch, Topic: "t", Action: runneltest.FailPartitions, Err: api.ErrNotLeader, Count: 1})
		if got := runneltest.Consume(t, f, "t", 1); len(got) != 1 || h.Hits() != 1 {
			t.Fatalf("%d records, %d hits", len(got), h.Hits())
		}
	})
}
