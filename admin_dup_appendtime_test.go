package runnel_test

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestRetryAcrossConfigChangeKeepsLogAppendTime: an idempotent producer's
// request to a LogAppendTime topic is appended and its answer lost; an
// AlterTopicConfig (which reopens the partition's log) comes before the
// retry, which the broker answers as a duplicate. The record's promise
// must say what a consumer reads: the broker's append time, as a
// LogAppendTime timestamp (the producer's doc: a promise runs after
// Timestamp was set, for a topic with LogAppendTime). The duplicate was
// answered with LogAppendTime -1 once the log had been reopened, and the
// promise gave the record's create time, as a CreateTime timestamp.
func TestRetryAcrossConfigChangeKeepsLogAppendTime(t *testing.T) {
	ctx := context.Background()
	clock := &amClock{}
	clock.ms.Store(1_700_000_000_000)
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{Clock: clock}),
		runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	f := runneltest.NewFaults(t, b)
	// The retry is held until the config has changed; the first attempt,
	// which the hold skips, is appended and its answer lost.
	held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Skip: 1, Count: 1})
	lost := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
	p := runneltest.NewProducer(t, f, producer.RetryBackoff(time.Millisecond))

	created := time.UnixMilli(1_600_000_000_000)
	done := make(chan error, 1)
	var got *record.Record
	p.Produce(ctx, &record.Record{Topic: "t", Value: []byte("v"), Timestamp: created}, func(r *record.Record, err error) {
		got = r
		done <- err
	})
	require.NoError(t, held.Wait(ctx, 1))
	require.Equal(t, 1, lost.Hits())
	appended := clock.ms.Load()
	clock.ms.Add(60_000)
	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{TimestampType: log.LogAppendTime, RetentionBytes: 1 << 30}))
	held.Remove()
	require.NoError(t, testkit.Await(t, done, "the record's promise"))

	recs := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, recs, 1, "the retry was a duplicate")
	require.Equal(t, record.LogAppendTime, recs[0].TimestampType)
	require.Equal(t, appended, recs[0].Timestamp.UnixMilli())
	require.EqualValues(t, 0, got.Offset)
	require.Equal(t, record.LogAppendTime, got.TimestampType, "the promise's timestamp type")
	require.Equal(t, appended, got.Timestamp.UnixMilli(), "the promise's timestamp")
}
