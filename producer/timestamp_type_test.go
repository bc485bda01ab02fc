package producer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestDeliveredRecordSaysCreateTime: a record whose TimestampType
// says LogAppendTime (one consumed from a LogAppendTime topic and
// forwarded, or one delivered to such a topic and produced again) is
// stored as a CreateTime record on a CreateTime topic, with its Timestamp
// as its create time. Its promise must say so: the producer ignores the
// caller's TimestampType, and a delivered record's TimestampType says
// whether its Timestamp is the CreateTime or the broker's LogAppendTime
// (record.Record). The promise kept the caller's LogAppendTime.
func TestDeliveredRecordSaysCreateTime(t *testing.T) {
	b := newBroker(t,
		runneltest.TopicConfig("lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}),
		runneltest.Topic("ct", 1))
	p := newProducer(t, b)
	ctx := testCtx(t)
	r := &record.Record{Topic: "lat", Value: []byte("v"), Timestamp: time.UnixMilli(1000)}
	require.NoError(t, p.ProduceSync(ctx, r))
	require.Equal(t, record.LogAppendTime, r.TimestampType)
	appended := r.Timestamp

	// The same record, produced again to the CreateTime topic.
	r.Topic = "ct"
	require.NoError(t, p.ProduceSync(ctx, r))
	got := readRecords(t, b, "ct", 0)
	require.Len(t, got, 1)
	require.Equal(t, record.CreateTime, got[0].TimestampType)
	require.Equal(t, appended.UnixMilli(), got[0].Timestamp.UnixMilli())
	require.Equal(t, record.CreateTime, r.TimestampType, "the promise's timestamp type: what the log holds")
	require.Equal(t, appended.UnixMilli(), r.Timestamp.UnixMilli())
}

// preEpochClock tells a fixed time before 1970.
type preEpochClock struct{}

func (preEpochClock) Now() time.Time { return time.UnixMilli(-5000) }

// TestNegativeLogAppendTimeIsReported: a broker whose clock is
// before 1970 stamps a LogAppendTime topic's batches with a negative
// time, which it answers (api.ProduceResponse.LogAppendTime is -1 only
// for CreateTime, as Kafka's NO_TIMESTAMP). The promise must report it,
// as Kafka's producer does for any log append time but -1: it reported
// the record's create time, as a CreateTime, where consumers read the
// append time.
func TestNegativeLogAppendTimeIsReported(t *testing.T) {
	b := newBroker(t, runneltest.Config(runnel.Config{Clock: preEpochClock{}, TopicDefaults: log.Config{Sync: log.SyncNever}}),
		runneltest.TopicConfig("lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	p := newProducer(t, b)
	r := &record.Record{Topic: "lat", Value: []byte("v"), Timestamp: time.UnixMilli(1000)}
	require.NoError(t, p.ProduceSync(testCtx(t), r))
	got := readRecords(t, b, "lat", 0)
	require.Len(t, got, 1)
	require.Equal(t, record.LogAppendTime, got[0].TimestampType)
	require.EqualValues(t, -5000, got[0].Timestamp.UnixMilli())
	require.Equal(t, record.LogAppendTime, r.TimestampType, "the promise's timestamp type")
	require.EqualValues(t, -5000, r.Timestamp.UnixMilli(), "the promise's timestamp")
}
