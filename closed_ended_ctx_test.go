package runnel_test

import (
	"context"
	"errors"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestClosedAnswersClosedWhateverTheCtx: every method of a closed
// broker, producer and consumer, given a ctx that has ended, answers the
// closed error (as "afterwards every method returns ErrClosed" says), not
// ctx's. Broker.DescribeTopic and UnwritablePartitions, and
// consumer.Poll, answered ctx's error first.
func TestClosedAnswersClosedWhateverTheCtx(t *testing.T) {
	for _, disk := range []bool{false, true} {
		cfg := runnel.Config{}
		if disk {
			cfg.Dir = t.TempDir()
		}
		b, err := runnel.Open(cfg)
		require.NoError(t, err)
		bg := context.Background()
		require.NoError(t, b.CreateTopic(bg, "c", log.TopicConfig{Partitions: 1}))
		p, err := producer.New(b)
		require.NoError(t, err)
		c, err := consumer.New(b)
		require.NoError(t, err)
		require.NoError(t, c.Assign("c", 0, consumer.Start()))
		require.NoError(t, c.Close())
		require.NoError(t, p.Close())
		require.NoError(t, b.Close())
		ctx, cancel := context.WithCancel(bg)
		cancel()
		check := func(what string, err error, want error) {
			t.Helper()
			if !errors.Is(err, want) {
				t.Errorf("disk=%v: %s on a closed client with an ended ctx: %v, want %v", disk, what, err, want)
			}
		}
		check("CreateTopic", b.CreateTopic(ctx, "d", log.TopicConfig{Partitions: 1}), runnel.ErrClosed)
		check("DeleteTopic", b.DeleteTopic(ctx, "c"), runnel.ErrClosed)
		check("CreatePartitions", b.CreatePartitions(ctx, "c", 3), runnel.ErrClosed)
		check("AlterTopicConfig", b.AlterTopicConfig(ctx, "c", log.Config{}), runnel.ErrClosed)
		check("UpdateTopicConfig", b.UpdateTopicConfig(ctx, "c", func(*log.Config) {}), runnel.ErrClosed)
		_, err = b.DeleteRecords(ctx, "c", 0, 0)
		check("DeleteRecords", err, runnel.ErrClosed)
		_, err = b.DescribeTopic(ctx, "c")
		check("DescribeTopic", err, runnel.ErrClosed)
		_, err = b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "c"}}})
		check("Fetch", err, runnel.ErrClosed)
		_, _, err = b.InitProducerID(ctx)
		check("InitProducerID", err, runnel.ErrClosed)
		_, err = b.ListOffset(ctx, "c", 0, api.Latest)
		check("ListOffset", err, runnel.ErrClosed)
		check("Maintain", b.Maintain(ctx), runnel.ErrClosed)
		_, err = b.Partitions(ctx, "c")
		check("Partitions", err, runnel.ErrClosed)
		_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll})
		check("Produce", err, runnel.ErrClosed)
		_, _, err = b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "c", Acks: api.AcksAll})
		check("ProduceAsync", err, runnel.ErrClosed)
		_, err = b.UnwritablePartitions(ctx, "c")
		check("UnwritablePartitions", err, runnel.ErrClosed)

		check("producer.Flush", p.Flush(ctx), producer.ErrClosed)
		check("producer.ProduceSync", p.ProduceSync(ctx, &record.Record{Topic: "c"}), producer.ErrClosed)
		check("producer.ProduceSync()", p.ProduceSync(ctx), producer.ErrClosed)
		var perr error
		p.Produce(ctx, &record.Record{Topic: "c"}, func(_ *record.Record, err error) { perr = err })
		check("producer.Produce", perr, producer.ErrClosed)
		p.TryProduce(ctx, &record.Record{Topic: "c"}, func(_ *record.Record, err error) { perr = err })
		check("producer.TryProduce", perr, producer.ErrClosed)

		_, err = c.Poll(ctx)
		check("consumer.Poll", err, consumer.ErrClosed)
		check("consumer.AssignTopic", c.AssignTopic(ctx, "c", consumer.Start()), consumer.ErrClosed)
		check("consumer.Assign", c.Assign("c", 0, consumer.Start()), consumer.ErrClosed)
		check("consumer.Seek", c.Seek("c", 0, consumer.Start()), consumer.ErrClosed)
		for _, err := range c.Records(ctx) {
			t.Errorf("disk=%v: a closed consumer's Records yielded %v", disk, err)
		}
	}
}

// TestZeroValuesAnswerClosedWhateverTheCtx: a zero Broker, Producer and Consumer are
// closed: their methods answer ErrClosed, also given a ctx that has ended.
func TestZeroValuesAnswerClosedWhateverTheCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b runnel.Broker
	check := func(what string, err error, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("zero %s with an ended ctx: %v, want %v", what, err, want)
		}
	}
	_, err := b.DescribeTopic(ctx, "c")
	check("Broker.DescribeTopic", err, runnel.ErrClosed)
	_, err = b.UnwritablePartitions(ctx, "c")
	check("Broker.UnwritablePartitions", err, runnel.ErrClosed)
	_, err = b.Partitions(ctx, "c")
	check("Broker.Partitions", err, runnel.ErrClosed)
	check("Broker.Maintain", b.Maintain(ctx), runnel.ErrClosed)
	var p producer.Producer
	check("Producer.Flush", p.Flush(ctx), producer.ErrClosed)
	check("Producer.ProduceSync", p.ProduceSync(ctx, &record.Record{Topic: "c"}), producer.ErrClosed)
	var c consumer.Consumer
	_, err = c.Poll(ctx)
	check("Consumer.Poll", err, consumer.ErrClosed)
	check("Consumer.AssignTopic", c.AssignTopic(ctx, "c", consumer.Start()), consumer.ErrClosed)
}
