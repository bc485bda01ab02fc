package producer_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A producer that wrote to a topic, then was idle for longer than
// MetadataMaxAge while the topic grew, maps its next keyed record by the
// topic's count of now: no goroutine of the topic runs to look the count
// up between batches, so the record has it looked up before it is
// partitioned (see MetadataMaxAge), as Kafka's producer forgets a topic
// idle for metadata.max.idle.ms (5 min) and makes the next send wait for
// its metadata, and kgo's metadata loop refreshes every MetadataMaxAge
// whatever the traffic. It went by the count of before: the look-ups came
// only after a batch (maybeRefresh, after send), never while the
// producer was idle, and Produce did not look at the count's age.
func TestIdleProducerMapsKeysByTheCountOfNow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		p, err := producer.New(b, producer.MetadataMaxAge(time.Minute))
		require.NoError(t, err)
		defer p.Close()
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Key: []byte("first")}))

		time.Sleep(time.Hour) // idle: its goroutines end
		synctest.Wait()
		require.NoError(t, b.CreatePartitions(ctx, "t", 8))
		time.Sleep(time.Hour) // 60 times MetadataMaxAge after the growth

		var key []byte
		for i := 0; ; i++ {
			key = []byte(fmt.Sprint("k", i))
			if producer.KeyPartition(key, 8) != 0 {
				break
			}
		}
		r := &record.Record{Topic: "t", Key: key}
		require.NoError(t, p.ProduceSync(ctx, r))
		r2 := &record.Record{Topic: "t", Key: key}
		require.NoError(t, p.ProduceSync(ctx, r2))
		t.Logf("key %q: first record after the idle hour in partition %d, the next in %d; KeyPartition of 8: %d",
			key, r.Partition, r2.Partition, producer.KeyPartition(key, 8))
		require.Equal(t, producer.KeyPartition(key, 8), r.Partition,
			"an hour after CreatePartitions (MetadataMaxAge a minute), the key's record went by the count of before")
	})
}

// The same after the topic was deleted and created again with fewer
// partitions while the producer was idle: its next records go to the
// partitions the topic has now. They were partitioned by the old count,
// refused for a partition the topic no longer has, and failed (the
// look-up confirmed that partition gone), though the topic existed and
// took them.
func TestIdleProducerWritesRecordsAfterRecreateWithFewer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 8}))
		p, err := producer.New(b, producer.MetadataMaxAge(time.Minute), producer.Linger(10*time.Millisecond))
		require.NoError(t, err)
		defer p.Close()
		var recs []*record.Record
		for i := range 8 {
			recs = append(recs, &record.Record{Topic: "t", Key: []byte(fmt.Sprint("k", i))})
		}
		require.NoError(t, p.ProduceSync(ctx, recs...))

		time.Sleep(time.Hour)
		synctest.Wait()
		require.NoError(t, b.DeleteTopic(ctx, "t"))
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		time.Sleep(time.Hour)

		recs = recs[:0]
		for i := range 8 {
			recs = append(recs, &record.Record{Topic: "t", Key: []byte(fmt.Sprint("k", i))})
		}
		recs = append(recs, &record.Record{Topic: "t", Value: []byte("no key")})
		failed := 0
		for _, r := range recs {
			p.Produce(ctx, r, func(r *record.Record, err error) {
				if err != nil {
					failed++
					t.Logf("key %q, partition %d: %v", r.Key, r.Partition, err)
				}
			})
		}
		require.NoError(t, p.Flush(ctx))
		require.Zero(t, failed, "records failed an hour after the topic was created again with 1 partition (MetadataMaxAge a minute)")
	})
}

// The look-up an idle topic's record waits for is bounded as a topic's
// first is (see MetadataMaxAge and Produce): a broker that does not
// answer it fails the record with ErrDeliveryTimeout, unwritten, and the
// other records of the same ProduceSync for the topic with it at once;
// the count stays due, so the next record asks again, and once the broker
// answers it is written. Before, no look-up was made there at all.
func TestIdleProducerLookUpBoundedByDeliveryTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		b, err := runnel.Open(runnel.Config{})
		require.NoError(t, err)
		defer b.Close()
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		c := &countingHold{Broker: b}
		p, err := producer.New(c, producer.MetadataMaxAge(time.Minute), producer.DeliveryTimeout(10*time.Second))
		require.NoError(t, err)
		defer p.Close()
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("first")}))

		time.Sleep(time.Hour) // idle: its goroutines end
		synctest.Wait()
		c.hold.Store(true)
		err = p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("a")}, &record.Record{Topic: "t", Value: []byte("b")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.Len(t, producer.RecordErrors(err), 2)
		require.EqualValues(t, 1, c.held.Load(), "one look-up for the ProduceSync's records")
		err = p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("c")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.EqualValues(t, 2, c.held.Load(), "the count stays due after a failed look-up")

		c.hold.Store(false)
		require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "t", Value: []byte("d")}))
		require.NoError(t, p.Close())
		var values []string
		for _, r := range runneltest.ConsumeAll(t, b, "t") {
			values = append(values, string(r.Value))
		}
		require.Equal(t, []string{"first", "d"}, values)
	})
}
