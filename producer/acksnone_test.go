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

// With AcksNone a failed request is not retried (see Acks): a batch the
// broker appended whose answer was lost (a request timed out, say), or
// whose acknowledgement failed, fails at its first attempt. Its records
// are in the log, and their error must say that they may have been
// written (ErrMaybeWritten), whichever path the request took: it said so
// only for an acknowledgement that failed on the pipeline's path
// (MaxInFlight above 1), and gave the bare api.ErrRequestTimedOut
// otherwise, an error ProduceSync does not count among those of records
// that may have been written. A refusal before the append still says
// nothing of the kind. Found by TestFaultsPropertyAcks (runneltest), seed
// 889287930182.
func TestAcksNoneMaybeWritten(t *testing.T) {
	for _, c := range []struct {
		name     string
		action   runneltest.Action
		err      error
		inLog    bool
		inFlight int
	}{
		{"lost answer/ProduceAsync", runneltest.LoseResponse, api.ErrRequestTimedOut, true, 5},
		{"lost answer/Produce", runneltest.LoseResponse, api.ErrRequestTimedOut, true, 1},
		{"failed ack/ProduceAsync", runneltest.FailAck, api.ErrRequestTimedOut, true, 5},
		{"failed ack/Produce", runneltest.FailAck, api.ErrRequestTimedOut, true, 1},
		{"refused/ProduceAsync", runneltest.FailRequest, api.ErrNotLeader, false, 5},
		{"refused/Produce", runneltest.FailRequest, api.ErrNotLeader, false, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newBroker(t, runneltest.Topic("t", 1))
			f := runneltest.NewFaults(t, b)
			rule := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: c.action, Err: c.err, Count: 1})
			p := newProducer(t, f, producer.DefaultTopic("t"), producer.Acks(producer.AcksNone),
				producer.MaxInFlight(c.inFlight), producer.RetryBackoff(time.Millisecond))
			ctx := testCtx(t)

			err := p.ProduceSync(ctx, &record.Record{Value: []byte("first")})
			require.ErrorIs(t, err, c.err)
			require.Equal(t, 1, rule.Hits())
			require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("second")}))
			got := values(runneltest.ConsumeAll(t, b, "t"))
			if !c.inLog {
				require.NotErrorIs(t, err, producer.ErrMaybeWritten, "refused before the append: %v", err)
				require.Equal(t, []string{"second"}, got, "not retried")
				return
			}
			require.ErrorIs(t, err, producer.ErrMaybeWritten, "appended: %v", err)
			require.Equal(t, []string{"first", "second"}, got, "once: not retried")
		})
	}
}
