package producer_test

import (
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// Close while a batch refused for its sequence numbers waits for its new
// producer id (the InitProducerID held) ends the wait: Close returns, and
// the batch's records fail with ErrClosed, never written; the records
// acknowledged before stay, once.
func TestSequenceGapRetryEndedByClose(t *testing.T) {
	for _, inFlight := range []int{1, 5} {
		b := newBroker(t, runneltest.Topic("t", 2))
		f := runneltest.NewFaults(t, b)
		p, err := producer.New(f, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight),
			producer.RecordPartitioner(producer.ManualPartitioner()))
		require.NoError(t, err)
		ctx := testCtx(t)
		first := &record.Record{Value: []byte("1"), Partition: 0}
		require.NoError(t, p.ProduceSync(ctx, first)) // the first id taken

		gap := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: "t", Partitions: []int32{1}, Err: api.ErrOutOfOrderSequence, Count: 1})
		hold := f.Add(runneltest.Fault{Op: runneltest.OpInitProducerID, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
		errc := make(chan error, 1)
		go func() { errc <- p.ProduceSync(ctx, &record.Record{Value: []byte("2"), Partition: 1}) }()
		require.NoError(t, gap.Wait(ctx, 1))
		require.NoError(t, hold.Wait(ctx, 1))
		require.NoError(t, p.Close())
		err = testkit.Await(t, errc, "ProduceSync's answer")
		require.ErrorIs(t, err, producer.ErrClosed)
		var re *producer.RecordError
		require.ErrorAs(t, err, &re)
		require.EqualValues(t, 1, re.Partition)
		hold.Remove()
		require.Equal(t, []string{"1"}, values(readRecords(t, b, "t", 0)))
		require.Empty(t, readRecords(t, b, "t", 1))
	}
}
