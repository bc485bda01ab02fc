package producer_test

import (
	"errors"
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
		{"refused/ProduceAsync", runneltest.FailRequest, api.ErrNotEnoughReplicas, false, 5},
		{"refused/Produce", runneltest.FailRequest, api.ErrNotEnoughReplicas, false, 1},
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

// TestAcksNoneClose: with AcksNone a record delivered gets a nil
// error; one whose request is in flight when Close comes fails with
// ErrClosed, which may have been written (acks=0 cannot tell); one
// produced after Close fails with ErrClosed before Produce returns.
func TestAcksNoneClose(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	p, err := producer.New(f, producer.DefaultTopic("t"), producer.Acks(producer.AcksNone))
	require.NoError(t, err)
	defer p.Close()
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("first")}))

	hold := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: runneltest.Unlimited})
	out := make(chan error, 1)
	p.Produce(ctx, &record.Record{Value: []byte("held")}, func(_ *record.Record, err error) { out <- err })
	require.NoError(t, hold.Wait(ctx, 1))
	require.NoError(t, p.Close())
	err = recvWithin(t, out, "held record's promise")
	require.ErrorIs(t, err, producer.ErrClosed)
	require.True(t, producer.MayBeWritten(err))

	var after error
	ran := false
	p.Produce(ctx, &record.Record{Value: []byte("after")}, func(_ *record.Record, err error) { after, ran = err, true })
	require.True(t, ran)
	require.ErrorIs(t, after, producer.ErrClosed)
	require.True(t, errors.Is(p.Flush(ctx), producer.ErrClosed))
	hold.Remove()
	require.Equal(t, []string{"first"}, values(readRecords(t, b, "t", 0)))
}
