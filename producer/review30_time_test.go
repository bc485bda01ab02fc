package producer_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview30DeliveredRecordSaysCreateTime: a record whose TimestampType
// says LogAppendTime (one consumed from a LogAppendTime topic and
// forwarded, or one delivered to such a topic and produced again) is
// stored as a CreateTime record on a CreateTime topic, with its Timestamp
// as its create time. Its promise must say so: the producer ignores the
// caller's TimestampType, and a delivered record's TimestampType says
// whether its Timestamp is the CreateTime or the broker's LogAppendTime
// (record.Record). The promise kept the caller's LogAppendTime.
func TestReview30DeliveredRecordSaysCreateTime(t *testing.T) {
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
