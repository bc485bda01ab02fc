package producer_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// TestUnknownErrorAtFirstAttemptNotErrMaybeWritten: ErrMaybeWritten is
// given "when the batch fails for good after an earlier attempt of it
// that the broker may have appended" (and, with AcksNone, for its one
// attempt). A batch whose first and only attempt fails with an error the
// producer does not know (not retriable, not a refusal) had no earlier
// attempt: its error is the Client's, which MayBeWritten already calls
// "maybe written", without ErrMaybeWritten beside it. A second batch,
// whose first attempt failed with a retriable error that is no refusal
// (maybe appended) and whose second failed with that unknown error, gets
// ErrMaybeWritten.
func TestUnknownErrorAtFirstAttemptNotErrMaybeWritten(t *testing.T) {
	boom := errors.New("boom: a Client's own error")
	require.False(t, api.IsRetriable(boom))
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("first")}))

	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: boom, Count: 1})
	err := p.ProduceSync(ctx, &record.Record{Value: []byte("one attempt")})
	require.ErrorIs(t, err, boom)
	require.True(t, producer.MayBeWritten(err), "an error the producer does not know: %v", err)
	require.NotErrorIs(t, err, producer.ErrMaybeWritten, "no earlier attempt: %v", err)

	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrRequestTimedOut, Count: 1})
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: boom, Count: 1})
	err = p.ProduceSync(ctx, &record.Record{Value: []byte("two attempts")})
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, err, producer.ErrMaybeWritten, "the first attempt timed out: %v", err)
}
