package runnel_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// An event-sourcing user, who keeps an aggregate's events
// keyed by its ID, snapshots in a compacted topic, and projections that
// replay a topic. These tests pin what such a user must be told.

// goDocOf returns the doc comment in file that ends just before the line
// holding decl (a field's or a function's declaration).
func goDocOf(t *testing.T, file, decl string) string {
	t.Helper()
	src, err := os.ReadFile(file)
	require.NoError(t, err)
	before, _, ok := strings.Cut(string(src), decl)
	require.True(t, ok, "%s has no %q", file, decl)
	lines := strings.Split(before, "\n")
	lines = lines[:len(lines)-1] // the declaration's own line, up to decl
	var doc []string
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "//") {
			break
		}
		doc = append([]string{strings.TrimSpace(strings.TrimPrefix(l, "//"))}, doc...)
	}
	require.NotEmpty(t, doc, "%s: no doc comment above %q", file, decl)
	return strings.Join(doc, " ")
}

// readmeParagraph returns README.md's text from s up to the next blank
// line, its spaces and line breaks made single spaces.
func readmeParagraph(t *testing.T, s string) string {
	t.Helper()
	data, err := os.ReadFile("README.md")
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(data), s)
	require.True(t, ok, "README.md has no %q", s)
	para, _, _ := strings.Cut(after, "\n\n")
	return strings.Join(strings.Fields(s+para), " ")
}

// TestEventSourcingQuietCompactedTopicKeepsItsActiveSegment: a snapshot
// topic (compacted, MaxCompactionLag set) that receives no more records
// keeps every value of its active segment, however long it waits and
// however often maintenance runs: the active segment rolls before an
// append, as Kafka's, never on its own, and the cleaner never reads it.
// The next append, past the lag, rolls it, and the next compaction keeps
// the key's last value of the sealed segment beside the new one. The
// docs said the segment "rolls once this old" and that MaxCompactionLag
// makes a topic "compact within that lag"; they now say it rolls at the
// next append.
func TestEventSourcingQuietCompactedTopicKeepsItsActiveSegment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := runneltest.NewBroker(t, runneltest.TopicConfig("snapshots", log.TopicConfig{Partitions: 1,
			Config: log.Config{CleanupPolicy: log.Compact, MaxCompactionLag: time.Minute}}))
		put := func(v string) {
			runneltest.Produce(t, b, "snapshots", &record.Record{Key: []byte("order-1"), Value: []byte(v)})
		}
		values := func() []string {
			var vs []string
			for _, r := range runneltest.ConsumeAll(t, b, "snapshots") {
				vs = append(vs, string(r.Value))
			}
			return vs
		}
		put("v1")
		put("v2")
		put("v3")
		time.Sleep(24 * time.Hour) // the broker's maintenance runs every 30 s meanwhile
		require.NoError(t, b.Maintain(ctx))
		require.Equal(t, []string{"v1", "v2", "v3"}, values(), "a quiet topic's active segment is never compacted")
		put("v4") // rolls the segment: its first record is a day older
		require.NoError(t, b.Maintain(ctx))
		require.Equal(t, []string{"v3", "v4"}, values())
	})
	doc := goDocOf(t, "log/config.go", "\tMaxCompactionLag time.Duration")
	require.Contains(t, doc, "at the next append", "MaxCompactionLag's doc")
	row := readmeJetStreamRow(t, "`MaxMsgsPerSubject: 1`")
	require.Contains(t, row, "at the next append", "README's MaxMsgsPerSubject row")
}

// TestEventSourcingProduceSyncIsNotAllOrNothing: a command handler that
// writes a command's events with one ProduceSync may find some written
// and others not, in the same partition: a record the broker refuses
// alone (too large, here) fails alone, and the records before and after
// it are appended. ProduceSync's doc did not say so; an event store user
// expects a command's events to be appended together (EventStoreDB's
// AppendToStream, Marten's SaveChanges). It now says what holds, and
// the way to get it: the events in one record.
func TestEventSourcingProduceSyncIsNotAllOrNothing(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t, runneltest.TopicConfig("orders", log.TopicConfig{Partitions: 1,
		Config: log.Config{MaxMessageBytes: 2000}}))
	p := runneltest.NewProducer(t, b)
	events := []*record.Record{
		{Topic: "orders", Key: []byte("order-1"), Value: []byte("created")},
		{Topic: "orders", Key: []byte("order-1"), Value: bytes.Repeat([]byte("x"), 3000)},
		{Topic: "orders", Key: []byte("order-1"), Value: []byte("paid")},
	}
	err := p.ProduceSync(ctx, events...)
	require.ErrorIs(t, err, producer.ErrRecordTooLarge)
	failed := producer.RecordErrors(err)
	require.Len(t, failed, 1)
	require.Same(t, events[1], failed[0].Record)
	var got []string
	for _, r := range runneltest.ConsumeAll(t, b, "orders") {
		got = append(got, string(r.Value))
	}
	require.Equal(t, []string{"created", "paid"}, got)

	doc := goDocOf(t, "producer/producer.go", "func (p *Producer) ProduceSync(")
	require.Contains(t, doc, "all or nothing", "ProduceSync's doc")
}

// TestEventSourcingGrowingPartitionsSplitsAKeysEvents: after CreatePartitions
// a key's events go to another partition than its earlier ones, from a new
// producer at once and from one that wrote before only after its next
// look-up of the count, so for a while both partitions get the key's
// events; a reader of the two cannot restore their order. CreatePartitions'
// doc said that keys move, not that their order is lost with it (nor
// that on a compacted topic a key's value in its old partition stays,
// never replaced by the values written to its new one); the
// README's Publish, which keys events "so that an order's events land in
// one partition, in order", did not say for how long.
func TestEventSourcingGrowingPartitionsSplitsAKeysEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b := runneltest.NewBroker(t, runneltest.Topic("orders", 2))
		var key []byte
		for i := 0; key == nil; i++ {
			if k := fmt.Appendf(nil, "order-%d", i); producer.KeyPartition(k, 2) != producer.KeyPartition(k, 3) {
				key = k
			}
		}
		event := func(p *producer.Producer, v string) int32 {
			r := &record.Record{Topic: "orders", Key: key, Value: []byte(v)}
			require.NoError(t, p.ProduceSync(ctx, r))
			return r.Partition
		}
		before := runneltest.NewProducer(t, b)
		old := event(before, "1")
		require.NoError(t, b.CreatePartitions(ctx, "orders", 3))
		after := runneltest.NewProducer(t, b)
		require.Equal(t, old, event(before, "2"))   // the old count, until its next look-up
		require.NotEqual(t, old, event(after, "3")) // the new count
		require.Equal(t, old, event(before, "4"))   // one key, two partitions, at once
		time.Sleep(producer.DefaultMetadataMaxAge + time.Second)
		// Idle past MetadataMaxAge (its goroutines ended): the next record
		// has the count looked up before it is partitioned.
		require.NotEqual(t, old, event(before, "5"))
		require.NotEqual(t, old, event(before, "6"))
	})
	doc := goDocOf(t, "topics.go", "func (b *Broker) CreatePartitions(")
	require.Contains(t, doc, "their order", "CreatePartitions' doc")
	require.Contains(t, doc, "compacted", "CreatePartitions' doc") // a key's old value stays in its old partition
	require.Contains(t, readmeParagraph(t, "// Publish writes an order's event"), "CreatePartitions", "README's Publish")
}
