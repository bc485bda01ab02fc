package producer_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// ProduceSync's RecordError says partition -1 (UnknownPartition, as
// Kafka's RecordMetadata) for a record that failed before it was
// partitioned, whatever its Partition field holds (left as the caller
// set it), and the partition for one that failed after. A record of a
// ManualPartitioner was given its partition by the caller: as Kafka's
// producer reports a record's explicit partition
// (AppendCallbacks.topicPartition), its RecordError says that partition
// whenever it failed, even one the topic does not have.
func TestRecordErrorPartitionUnknownBeforePartitioning(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 3), runneltest.TopicConfig("small", log.TopicConfig{Partitions: 3, Config: log.Config{MaxMessageBytes: 200}}))
	ctx := testCtx(t)
	ended, cancel := context.WithCancel(ctx)
	cancel()
	recordErr := func(err error) *producer.RecordError {
		t.Helper()
		var re *producer.RecordError
		require.ErrorAs(t, err, &re)
		return re
	}

	keyed := newProducer(t, b)
	r := &record.Record{Topic: "t", Key: []byte("k"), Value: []byte("v")}
	re := recordErr(keyed.ProduceSync(ended, r))
	require.Equal(t, producer.UnknownPartition, re.Partition)
	require.Zero(t, r.Partition, "left as it was")
	require.Equal(t, "runnel/producer: record for t not sent: context canceled", re.Error())

	manual := newProducer(t, b, producer.RecordPartitioner(producer.ManualPartitioner()))
	r = &record.Record{Topic: "t", Partition: 2, Value: []byte("v")}
	re = recordErr(manual.ProduceSync(ended, r))
	require.EqualValues(t, 2, re.Partition, "the record's explicit partition")
	require.EqualValues(t, 2, r.Partition, "left as the caller set it")
	require.Equal(t, "runnel/producer: record for t-2 not sent: context canceled", re.Error(), "never sent, as the message of any other partitioner's record says")

	r = &record.Record{Topic: "t", Partition: 7, Value: []byte("v")}
	err := manual.ProduceSync(ctx, r)
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	require.EqualValues(t, 7, recordErr(err).Partition, "the record's explicit partition, out of range")

	// A negative partition is no partition (Kafka's ProducerRecord
	// refuses one).
	r = &record.Record{Topic: "t", Partition: -3, Value: []byte("v")}
	err = manual.ProduceSync(ctx, r)
	require.ErrorIs(t, err, producer.ErrInvalidPartition)
	require.Equal(t, producer.UnknownPartition, recordErr(err).Partition)

	// Refused by the broker: it was partitioned.
	r = &record.Record{Topic: "small", Partition: 1, Value: bytes.Repeat([]byte("x"), 300)}
	err = manual.ProduceSync(ctx, r)
	require.ErrorIs(t, err, producer.ErrRecordTooLarge)
	re = recordErr(err)
	require.EqualValues(t, 1, re.Partition)
	require.Contains(t, re.Error(), "runnel/producer: record for small-1: ")
}

// A ManualPartitioner's record for partition 0 that fails before it is
// partitioned reports partition 0 in its RecordError: 0 is an explicit
// partition as much as 2 is (TestRecordErrorPartitionUnknownBeforePartitioning
// takes 2, 7 and -3).
func TestRecordErrorExplicitPartitionZero(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	p := newProducer(t, b, producer.RecordPartitioner(producer.ManualPartitioner()))
	ended, cancel := context.WithCancel(testCtx(t))
	cancel()
	err := p.ProduceSync(ended, &record.Record{Topic: "t", Value: []byte("v")})
	require.ErrorIs(t, err, context.Canceled)
	re := producer.RecordErrors(err)
	require.Len(t, re, 1)
	require.Zero(t, re[0].Partition, "the record's explicit partition")
}
