package runnel_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"testing/synctest"
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
	"github.com/stretchr/testify/require"
)

// TestReadmeKgoTable runs what README.md's "Coming from franz-go's
// kgo" table maps kgo's calls to, with every name it gives: the producer's
// options, the consumer's, Poll's Fetches, Seek/Pause/Resume/Lag/Position,
// and the kadm row's admin calls; and checks the table's claims that a
// topic not yet created fails a produce at once, and that Poll's error
// matches runnel.ErrClosed once the broker is closed.
func TestReadmeKgoTable(t *testing.T) {
	// In a synctest bubble, so that DeliveryTimeout and FetchMaxWait count
	// on its clock, which no load on the machine reaches first.
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
		defer cancel()
		b := runneltest.NewBroker(t, runneltest.Topic("t", 2))

		p, err := producer.New(b,
			producer.DefaultTopic("t"),
			producer.Linger(time.Millisecond),
			producer.Compression(compression.Zstd),
			producer.BatchMaxBytes(64<<10),
			producer.DeliveryTimeout(5*time.Second),
			producer.Acks(producer.AcksAll),
			producer.MaxBufferedRecords(100),
			producer.MaxBufferedBytes(1<<20),
			producer.RecordPartitioner(producer.PartitionerFunc(func(r *record.Record, n int) int32 { return 1 })),
			producer.Logger(slog.New(slog.DiscardHandler)),
		)
		require.NoError(t, err)
		defer p.Close()
		noIdem, err := producer.New(b, producer.DisableIdempotence(), producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		defer noIdem.Close()

		// Produce with a promise, TryProduce, Flush, ProduceSync.
		done := make(chan error, 2)
		p.Produce(ctx, &record.Record{Key: []byte("a"), Value: []byte("1"),
			Headers: []record.Header{{Key: "h", Value: []byte("v")}}}, func(r *record.Record, err error) { done <- err })
		p.TryProduce(ctx, &record.Record{Value: []byte("2")}, func(r *record.Record, err error) { done <- err })
		require.NoError(t, p.Flush(ctx))
		require.NoError(t, <-done)
		require.NoError(t, <-done)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("3")}))
		require.NoError(t, noIdem.ProduceSync(ctx, &record.Record{Topic: "t", Partition: 0, Value: []byte("4")}))

		// "a topic not yet created fails a produce at once (runnel.ErrUnknownTopic)",
		// one record per failed record in RecordErrors.
		err = p.ProduceSync(ctx, &record.Record{Topic: "nope", Value: []byte("x")})
		require.ErrorIs(t, err, runnel.ErrUnknownTopic)
		require.Len(t, producer.RecordErrors(err), 1)

		c, err := consumer.New(b,
			consumer.ResetOffset(consumer.ResetEarliest),
			consumer.FetchMaxWait(50*time.Millisecond),
			consumer.FetchMaxBytes(1<<20),
			consumer.FetchMaxPartitionBytes(1<<20),
			consumer.FetchMinBytes(1),
		)
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.AssignTopic(ctx, "t", consumer.Start()))
		n := 0
		for n < 4 {
			fs, err := c.Poll(ctx)
			require.NoError(t, err)
			fs.EachRecord(func(*record.Record) { n++ })
			require.NoError(t, fs.Err())
		}
		require.Equal(t, 4, n)
		pos, ok := c.Position("t", 1)
		require.True(t, ok)
		require.Equal(t, int64(3), pos)
		lag, ok := c.Lag("t", 1)
		require.True(t, ok)
		require.Zero(t, lag)
		require.NoError(t, c.Seek("t", 1, consumer.At(1)))
		c.Pause(api.TopicPartition{Topic: "t", Partition: 0})
		c.Resume(api.TopicPartition{Topic: "t", Partition: 0})
		for rec, err := range c.Records(ctx) {
			require.NoError(t, err)
			require.Equal(t, int64(1), rec.Offset, "Seek(At(1)) reads from offset 1")
			break
		}

		// The kadm row.
		require.NoError(t, b.CreateTopic(ctx, "k", log.TopicConfig{Partitions: 1}))
		require.NoError(t, b.CreatePartitions(ctx, "k", 2))
		require.NoError(t, b.AlterTopicConfig(ctx, "k", log.Config{RetentionTime: -1}))
		require.NoError(t, b.UpdateTopicConfig(ctx, "k", func(c *log.Config) { c.SegmentTime = time.Hour }))
		info, err := b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		lo, err := b.ListOffset(ctx, "t", 1, api.Latest)
		require.NoError(t, err)
		require.Equal(t, info.Partitions[1].HighWatermark, lo.Offset)
		start, err := b.DeleteRecords(ctx, "t", 1, api.Latest)
		require.NoError(t, err)
		require.Equal(t, lo.Offset, start)
		require.NoError(t, b.DeleteTopic(ctx, "k"))

		// "errors.Is(err, runnel.ErrUnknownTopic); api.Code(err) is Kafka's
		// code, api.ForCode(code) the error".
		_, err = b.DescribeTopic(ctx, "k")
		require.ErrorIs(t, err, runnel.ErrUnknownTopic)
		require.ErrorIs(t, api.ForCode(api.Code(err)), runnel.ErrUnknownTopic)

		// "fs, err := c.Poll(ctx) (err matches runnel.ErrClosed once the broker
		// is closed)".
		require.NoError(t, b.Close())
		_, err = c.Poll(ctx)
		require.ErrorIs(t, err, runnel.ErrClosed)
	})
}

// TestReadmeAssignWaitsAssignTopicFails pins README's "Common
// tasks": a partition assigned with Assign that does not exist yet is
// waited for without an error, where AssignTopic fails at once for an
// unknown topic; and CreateTopic leaves a topic that exists as it is
// (ErrTopicExists, whatever config it was asked for).
func TestReadmeAssignWaitsAssignTopicFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	b := runneltest.NewBroker(t)
	c := runneltest.NewConsumer(t, b, consumer.FetchMaxWait(50*time.Millisecond))
	require.ErrorIs(t, c.AssignTopic(ctx, "later", consumer.Start()), runnel.ErrUnknownTopic)
	require.NoError(t, c.Assign("later", 0, consumer.Start()))

	fs, err := c.Poll(ctx)
	require.NoError(t, err)
	require.NoError(t, fs.Err(), "a partition that does not exist yet is waited for without an error")
	require.Zero(t, fs.NumRecords())

	runneltest.CreateTopic(t, b, "later", log.TopicConfig{Partitions: 1})
	runneltest.ProduceValues(t, b, "later", "v")
	for rec, err := range c.Records(ctx) {
		require.NoError(t, err)
		require.Equal(t, "v", string(rec.Value))
		break
	}

	err = b.CreateTopic(ctx, "later", log.TopicConfig{Partitions: 5, Config: log.Config{RetentionTime: time.Hour}})
	require.ErrorIs(t, err, runnel.ErrTopicExists)
	info, err := b.DescribeTopic(ctx, "later")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 1, "CreateTopic of an existing topic changes nothing")
}

// TestReadmeKfakeTableAutoCreate pins the kfake table's
// AllowAutoTopicCreation row and runneltest's "(default 1; kfake's 10)":
// with AutoCreateTopics a first produce creates the topic, with
// DefaultPartitions partitions, or 1 when that is not set.
func TestReadmeKfakeTableAutoCreate(t *testing.T) {
	for _, tc := range []struct{ set, want int }{{0, 1}, {3, 3}} {
		b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{AutoCreateTopics: true, DefaultPartitions: tc.set}))
		runneltest.ProduceValues(t, b, "auto", "v")
		n, err := b.Partitions(context.Background(), "auto")
		require.NoError(t, err)
		require.Equal(t, tc.want, n, "DefaultPartitions %d", tc.set)
		require.Len(t, runneltest.ConsumeAll(t, b, "auto"), 1)
	}
}

// TestReadmeJetStreamTable pins two rows of README's JetStream
// table: PurgeStream is DeleteRecords(..., api.Latest) for each partition,
// refused with runnel.ErrPolicyViolation on a topic that is compacted only.
func TestReadmeJetStreamTable(t *testing.T) {
	ctx := context.Background()
	b := runneltest.NewBroker(t,
		runneltest.Topic("stream", 2),
		runneltest.TopicConfig("subjects", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	runneltest.Produce(t, b, "stream",
		&record.Record{Partition: 0, Value: []byte("a")}, &record.Record{Partition: 1, Value: []byte("b")})
	for p := range int32(2) {
		_, err := b.DeleteRecords(ctx, "stream", p, api.Latest)
		require.NoError(t, err)
	}
	require.Empty(t, runneltest.ConsumeAll(t, b, "stream"))
	_, err := b.DeleteRecords(ctx, "subjects", 0, api.Latest)
	require.True(t, errors.Is(err, runnel.ErrPolicyViolation), "got %v", err)
}
