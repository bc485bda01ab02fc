package producer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestTimestampOutOfBoundsFails: a record stamped more than the topic's
// TimestampAfterMax (Kafka 4's message.timestamp.after.max.ms, an hour by
// default) ahead of the broker's clock fails with the broker's
// INVALID_TIMESTAMP (log.ErrInvalidTimestamp, code 32, not retriable),
// is never sent again on its own, and is not taken for one that may have
// been written: the records batched with it are delivered (the refused
// batch is split, as for any invalid record), and the producer keeps its
// id.
func TestTimestampOutOfBoundsFails(t *testing.T) {
	b := newBroker(t, runneltest.Topic("t", 1))
	c := &hookClient{b: b}
	p := newProducer(t, c, producer.DefaultTopic("t"), producer.Linger(time.Minute), producer.RetryBackoff(time.Millisecond))
	ctx := testCtx(t)
	now := time.Now()
	first := &record.Record{Value: []byte("first"), Timestamp: now}
	bad := &record.Record{Value: []byte("bad"), Timestamp: now.Add(48 * time.Hour)}
	last := &record.Record{Value: []byte("last"), Timestamp: now}
	o := newOutcome()
	for _, r := range []*record.Record{first, bad, last} {
		p.Produce(ctx, r, o.promise())
	}
	require.NoError(t, p.Flush(ctx))
	o.wait()

	err := o.err(bad)
	require.ErrorIs(t, err, log.ErrInvalidTimestamp)
	require.EqualValues(t, 32, api.Code(err), "INVALID_TIMESTAMP")
	require.False(t, api.IsRetriable(err))
	require.False(t, producer.MayBeWritten(err), "refused before the append: %v", err)
	require.ErrorContains(t, err, "message.timestamp.after.max.ms=3600000")
	require.NoError(t, o.err(first))
	require.NoError(t, o.err(last))

	reqs := c.requests()
	require.Equal(t, 3, int(reqs[0].batch.NumRecords()), "the three records went as one batch")
	alone := 0
	for _, r := range reqs {
		var vals []string
		for rec, err := range r.batch.Records() {
			require.NoError(t, err)
			vals = append(vals, string(rec.Value))
		}
		if len(vals) == 1 && vals[0] == "bad" {
			alone++
		}
	}
	require.Equal(t, 1, alone, "the refused record alone was sent once: not retried")

	after := &record.Record{Value: []byte("after"), Timestamp: now}
	require.NoError(t, p.ProduceSync(ctx, after))
	require.Equal(t, first.ProducerID, after.ProducerID, "no new producer id for a batch that was never written")
	require.Equal(t, []string{"first", "last", "after"}, values(runneltest.ConsumeAll(t, b, "t")))
}
