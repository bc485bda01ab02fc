package peers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestReview34MigrateFaultCountsRequests: kfake's Fault Count counts
// requests, and a kgo produce request carries every partition it has
// records for (of one broker): Count 1 fails three partitions' batches
// at once. runnel's producer sends a request per partition, so a Faults
// rule's Count 1 fails one partition's batch; failing each of three
// once takes Count 3 (the Migrate table in runneltest's godoc says so).
func TestReview34MigrateFaultCountsRequests(t *testing.T) {
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

// TestReview34MigrateAfterAppendErrors: kfake answers a produce
// NOT_ENOUGH_REPLICAS_AFTER_APPEND, as REQUEST_TIMED_OUT, after it
// appended the batch; kgo retries, and idempotence keeps one copy.
// runneltest's LoseResponse with api.ForCode of that code does the
// same: the record is once in the log, at the offset its promise got.
func TestReview34MigrateAfterAppendErrors(t *testing.T) {
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

// TestReview34MigrateFetchUnknownTopic: kgo strips a fetched partition's
// UNKNOWN_TOPIC_OR_PARTITION and fetches again, without a word, so a
// kfake test that injects one into a fetch reads every record. runnel's
// consumer reports it (for a partition whose position the broker gave,
// it takes the topic for deleted), and runneltest.Consume fails the test
// on it: the runneltest side injects api.ErrNotLeader to be ridden out
// (runneltest's TestReview34KfakeConsumeFailsOnReportedErrors has the
// other side).
func TestReview34MigrateFetchUnknownTopic(t *testing.T) {
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
