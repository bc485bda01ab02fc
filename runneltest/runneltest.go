// Package runneltest is to runnel what net/http/httptest is to net/http:
// an in-memory broker for unit tests, closed by t.Cleanup, and helpers that
// create topics and produce and consume records, failing the test on any
// error.
//
//	b := runneltest.NewBroker(t, runneltest.Topic("orders", 3))
//	runneltest.Produce(t, b, "orders", &record.Record{Key: k, Value: v})
//	recs := runneltest.Consume(t, b, "orders", 1)
//
// It sits with the clients above the broker; tests of code that takes a
// producer.Client or consumer.Client can hand it the *runnel.Broker.
package runneltest

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// Option configures NewBroker.
type Option func(*options)

type options struct {
	cfg    runnel.Config
	topics []topic
}

type topic struct {
	name string
	cfg  log.TopicConfig
}

// Config sets the broker's configuration (Dir "" keeps it in memory).
func Config(cfg runnel.Config) Option { return func(o *options) { o.cfg = cfg } }

// Topic creates a topic with n partitions when the broker opens.
func Topic(name string, partitions int) Option {
	return TopicConfig(name, log.TopicConfig{Partitions: partitions})
}

// TopicConfig creates a topic with a configuration when the broker opens.
func TopicConfig(name string, cfg log.TopicConfig) Option {
	return func(o *options) { o.topics = append(o.topics, topic{name, cfg}) }
}

// NewBroker opens an in-memory broker (unless Config says otherwise), with
// the topics the options ask for, and closes it when the test ends.
func NewBroker(t testing.TB, opts ...Option) *runnel.Broker {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	b, err := runnel.Open(o.cfg)
	if err != nil {
		t.Fatalf("runneltest: open broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("runneltest: close broker: %v", err)
		}
	})
	for _, tp := range o.topics {
		CreateTopic(t, b, tp.name, tp.cfg)
	}
	return b
}

// CreateTopic creates a topic or fails the test.
func CreateTopic(t testing.TB, b *runnel.Broker, name string, cfg log.TopicConfig) {
	t.Helper()
	if err := b.CreateTopic(context.Background(), name, cfg); err != nil {
		t.Fatalf("runneltest: create topic %q: %v", name, err)
	}
}

// Produce appends records to topic, each as its own batch, and fails the
// test on any error. A record with a key goes to the partition its key
// hashes to with producer.KeyPartition (Kafka's murmur2), where a producer,
// a Java client or franz-go would put it; one without, to its Partition
// field. Each record gets its Topic, Partition, Offset and (if zero)
// Timestamp set.
func Produce(t testing.TB, b *runnel.Broker, topic string, recs ...*record.Record) {
	t.Helper()
	ctx := context.Background()
	n, err := b.Partitions(ctx, topic)
	if err != nil {
		t.Fatalf("runneltest: produce to %q: %v", topic, err)
	}
	var bld record.Builder
	for _, r := range recs {
		r.Topic = topic
		if r.Key != nil {
			r.Partition = producer.KeyPartition(r.Key, n)
		}
		if r.Timestamp.IsZero() {
			r.Timestamp = time.Now()
		}
		bld.Reset()
		bld.Add(r)
		data, err := bld.AppendTo(nil, compression.None)
		if err != nil {
			t.Fatalf("runneltest: encode: %v", err)
		}
		resp, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: r.Partition, Acks: api.AcksAll, Batches: data})
		if err != nil {
			t.Fatalf("runneltest: produce to %s-%d: %v", topic, r.Partition, err)
		}
		r.Offset = resp.BaseOffset
	}
}

// ProduceValues produces one record per value, without keys, to partition 0.
func ProduceValues(t testing.TB, b *runnel.Broker, topic string, values ...string) {
	t.Helper()
	recs := make([]*record.Record, len(values))
	for i, v := range values {
		recs[i] = &record.Record{Value: []byte(v)}
	}
	Produce(t, b, topic, recs...)
}

// Consume reads topic's partitions from their start until it has n
// records, and fails the test if they do not come within 10 seconds.
// Records come partition by partition, each in offset order.
func Consume(t testing.TB, b *runnel.Broker, topic string, n int) []*record.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	parts, err := b.Partitions(ctx, topic)
	if err != nil {
		t.Fatalf("runneltest: consume %q: %v", topic, err)
	}
	offsets := make([]int64, parts)
	for p := range offsets {
		if offsets[p], err = b.ListOffset(ctx, topic, int32(p), api.Earliest); err != nil {
			t.Fatalf("runneltest: consume %s-%d: %v", topic, p, err)
		}
	}
	var out []*record.Record
	for len(out) < n {
		req := &api.FetchRequest{MaxWait: 100 * time.Millisecond}
		for p, off := range offsets {
			req.Partitions = append(req.Partitions, api.FetchPartition{Topic: topic, Partition: int32(p), Offset: off})
		}
		resp, err := b.Fetch(ctx, req)
		if err != nil {
			t.Fatalf("runneltest: consume %q: got %d of %d records: %v", topic, len(out), n, err)
		}
		for _, fp := range resp.Partitions {
			if fp.Err != nil {
				t.Fatalf("runneltest: consume %s-%d: %v", topic, fp.Partition, fp.Err)
			}
			for batch, err := range record.Batches(fp.Records) {
				if err != nil {
					t.Fatalf("runneltest: consume %s-%d: %v", topic, fp.Partition, err)
				}
				for r, err := range batch.Records() {
					if err != nil {
						t.Fatalf("runneltest: consume %s-%d: %v", topic, fp.Partition, err)
					}
					if r.Offset < offsets[fp.Partition] {
						continue
					}
					r.Topic, r.Partition = topic, fp.Partition
					out = append(out, r)
				}
				offsets[fp.Partition] = batch.NextOffset()
			}
		}
	}
	return out[:n]
}
