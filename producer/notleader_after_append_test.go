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

// Kafka's broker answers NOT_LEADER_OR_FOLLOWER after an append too: to
// an acks=all request waiting for its followers when the partition's
// leadership moves away. A batch answered so, then refused until its
// delivery timeout, may be in the log: its records' error says so, and
// its sequence numbers must not go to the next batch, which the broker
// would answer as the first one's duplicate, acknowledged and never
// written. (The producer takes a new id, as for a batch whose answer was
// lost.)
func TestNotLeaderAfterAnAppendIsMaybeWritten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBroker(t, runneltest.Topic("t", 1))
		f := runneltest.NewFaults(t, b)
		appended := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrNotLeader, Count: 1})
		refused := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrNotLeader, Count: runneltest.Unlimited})
		p := newProducer(t, f, producer.DefaultTopic("t"), producer.MaxInFlight(1),
			producer.DeliveryTimeout(time.Second), producer.RetryBackoff(10*time.Millisecond))

		err := p.ProduceSync(t.Context(), &record.Record{Value: []byte("first")})
		require.ErrorIs(t, err, producer.ErrDeliveryTimeout)
		require.True(t, producer.MayBeWritten(err), "appended, then answered NOT_LEADER_OR_FOLLOWER: %v", err)
		require.Equal(t, 1, appended.Hits())
		require.NotZero(t, refused.Hits())

		refused.Remove() // a leader again
		second := &record.Record{Value: []byte("second")}
		require.NoError(t, p.ProduceSync(t.Context(), second))
		require.Equal(t, int64(1), second.Offset, "written after the first, not answered as its duplicate")
		var values []string
		for _, r := range runneltest.ConsumeAll(t, b, "t") {
			values = append(values, string(r.Value))
		}
		require.Equal(t, []string{"first", "second"}, values)
	})
}
