package producer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A batch refused with ErrProducerFenced was not appended: like a batch
// refused for good otherwise (see giveUp), it gives its sequence numbers
// back to the partition's next batch. Kept, they left a gap that the
// broker refused in the next batch (ErrOutOfOrderSequence), which then
// failed, when a first attempt of it had gone unanswered, though only
// retriable faults had touched it. Found by TestFaultsProperty
// (runneltest), seed 262.
func TestFencedBatchGivesBackSequence(t *testing.T) {
	for _, inFlight := range []int{1, 5} {
		b := newBroker(t, runneltest.Topic("t", 1))
		f := runneltest.NewFaults(t, b)
		p := newProducer(t, f, producer.DefaultTopic("t"), producer.MaxInFlight(inFlight), producer.RetryBackoff(time.Millisecond))
		ctx := testCtx(t)

		require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("first")}))
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: producer.ErrProducerFenced, Count: 1})
		require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Value: []byte("fenced")}), producer.ErrProducerFenced)

		// The next batch's first attempt goes unanswered (it may have
		// been appended, for all the producer knows); its retry reaches
		// the broker.
		f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrRequestTimedOut, Count: 1})
		next := &record.Record{Value: []byte("next")}
		require.NoError(t, p.ProduceSync(ctx, next), "MaxInFlight %d", inFlight)
		got := runneltest.ConsumeAll(t, b, "t")
		require.Equal(t, []string{"first", "next"}, values(got))
		require.EqualValues(t, 1, next.Offset)
		require.Equal(t, got[0].ProducerID, got[1].ProducerID, "the producer keeps its id")
		require.EqualValues(t, 1, got[1].Sequence, "the fenced batch's sequence number, given back")
	}
}
