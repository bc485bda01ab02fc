package producer_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A ManualPartitioner's record that fails before it is buffered — its
// producer closed, its topic's partition count not learnt within
// DeliveryTimeout — was never sent, and MayBeWritten must say so of
// ProduceSync's error, as it does for the same record of any other
// partitioner. Its RecordError carries the record's own partition (as
// Kafka's producer reports an explicit partition), not UnknownPartition,
// which was what MayBeWritten went by: it said true for ErrClosed and
// ErrDeliveryTimeout there, so a caller that produces a record again
// only when it was surely not written dropped a record never sent. In a
// synctest bubble: on the real clock, a loaded machine could reach the
// 200 ms DeliveryTimeout before the last record's first attempt, and
// that record was then never sent.
func TestMayBeWrittenManualPartitionerNotBuffered(t *testing.T) {
	synctest.Test(t, testMayBeWrittenManualPartitionerNotBuffered)
}

func testMayBeWrittenManualPartitionerNotBuffered(t *testing.T) {
	ctx := testCtx(t)
	for _, manual := range []bool{false, true} {
		opts := []producer.Opt{producer.DeliveryTimeout(200 * time.Millisecond)}
		if manual {
			opts = append(opts, producer.RecordPartitioner(producer.ManualPartitioner()))
		}
		b := newBroker(t, runneltest.Topic("t", 2))
		f := runneltest.NewFaults(t, b)
		f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Topic: "t", Err: api.ErrRequestTimedOut, Count: runneltest.Unlimited})
		p := newProducer(t, f, opts...)
		err := p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: 1, Value: []byte("v")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout, "manual=%v", manual)
		require.False(t, producer.MayBeWritten(err), "manual=%v: the partition count was never learnt: %v", manual, err)

		require.NoError(t, p.Close())
		err = p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: 1, Value: []byte("v")})
		require.ErrorIs(t, err, producer.ErrClosed, "manual=%v", manual)
		require.False(t, producer.MayBeWritten(err), "manual=%v: produced after Close: %v", manual, err)
		require.ErrorContains(t, err, "not sent", "manual=%v", manual)
	}

	// A sent record of a ManualPartitioner still may have been written.
	b := newBroker(t, runneltest.Topic("t", 2))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "t", Err: api.ErrNotLeader, Count: runneltest.Unlimited})
	p := newProducer(t, f, producer.DeliveryTimeout(200*time.Millisecond), producer.RecordPartitioner(producer.ManualPartitioner()))
	err := p.ProduceSync(ctx, &record.Record{Topic: "t", Partition: 1, Value: []byte("v")})
	require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
	require.True(t, producer.MayBeWritten(err), "%v", err)
	require.EqualValues(t, 1, producer.RecordErrors(err)[0].Partition)
}
