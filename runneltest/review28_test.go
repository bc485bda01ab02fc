package runneltest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// On a topic with LogAppendTime the broker stamps the records: Produce
// gives each record the timestamp it was stored with, as a producer's
// promise does, not the one it was handed (which is nowhere in the log).
func TestReview28ProduceLogAppendTime(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.TopicConfig("t", log.TopicConfig{Partitions: 1,
		Config: log.Config{TimestampType: log.LogAppendTime}}))
	r := &record.Record{Value: []byte("v"), Timestamp: time.UnixMilli(1000)}
	runneltest.Produce(t, b, "t", r)

	got := runneltest.ConsumeAll(t, b, "t")
	require.Len(t, got, 1)
	require.Equal(t, record.LogAppendTime, got[0].TimestampType)
	require.Equal(t, got[0].TimestampType, r.TimestampType, "as stored")
	require.Equal(t, got[0].Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "as stored")
}
