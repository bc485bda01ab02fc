package producer_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A log fenced while a produce waited for its fsync answers with
// log.ErrLogFenced and the cause beside it, which may be one of the
// refusals the producer knows (record.ErrCorrupt: a compaction's swap
// that met corrupt data, say). The batch was appended, so the error is
// no refusal, and the producer's doc says that log.ErrLogFenced means a
// record may have been written: the producer counted it as a refusal
// (not written; an idempotent batch's sequence numbers then free for
// the next batch), and with AcksNone the record failed without
// ErrMaybeWritten. (MaxInFlight 1: the acknowledgement's error comes
// from Produce itself; above 1 the pipeline's acknowledgements already
// counted as appended.) From revcli29's candidate.
func TestReview29FencedWithARefusalMayHaveBeenWritten(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	fenced := fmt.Errorf("%w: %w", log.ErrLogFenced, record.ErrCorrupt)
	rule := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.FailAck, Err: fenced, Count: 1})
	p := newProducer(t, f, producer.DefaultTopic("t"), producer.Acks(producer.AcksNone), producer.MaxInFlight(1),
		producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)

	err := p.ProduceSync(ctx, &record.Record{Value: []byte("first")})
	require.Equal(t, 1, rule.Hits())
	require.ErrorIs(t, err, log.ErrLogFenced)
	require.ErrorIs(t, err, producer.ErrMaybeWritten, "appended, then fenced: %v", err)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Value: []byte("second")}))
	require.Equal(t, []string{"first", "second"}, values(runneltest.ConsumeAll(t, b, "t")))
}
