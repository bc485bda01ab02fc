package runneltest_test

import (
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestProduceSaysCreateTime: Produce gives each record the
// timestamp it was stored with, and its type, as a producer's promise
// does: a record whose TimestampType says LogAppendTime (one read from a
// LogAppendTime topic and produced to a CreateTime one) is stored as a
// CreateTime record, and must say so afterwards. It kept the
// LogAppendTime it came with.
func TestProduceSaysCreateTime(t *testing.T) {
	b := runneltest.NewBroker(t,
		runneltest.TopicConfig("lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}),
		runneltest.Topic("ct", 1))
	runneltest.Produce(t, b, "lat", &record.Record{Value: []byte("v"), Timestamp: time.UnixMilli(1000)})
	in := runneltest.ConsumeAll(t, b, "lat")
	require.Len(t, in, 1)
	require.Equal(t, record.LogAppendTime, in[0].TimestampType)

	r := &record.Record{Value: in[0].Value, Timestamp: in[0].Timestamp, TimestampType: in[0].TimestampType}
	runneltest.Produce(t, b, "ct", r)
	got := runneltest.ConsumeAll(t, b, "ct")
	require.Len(t, got, 1)
	require.Equal(t, record.CreateTime, got[0].TimestampType)
	require.Equal(t, got[0].TimestampType, r.TimestampType, "as stored")
	require.Equal(t, got[0].Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "as stored")
}

type preEpochClock struct{}

func (preEpochClock) Now() time.Time { return time.UnixMilli(-5000) }

// TestProduceNegativeLogAppendTime: a broker whose clock is before
// 1970 stamps a LogAppendTime topic's records with a negative time;
// Produce gives the record that time, as stored (it took any negative
// answer for "no log append time").
func TestProduceNegativeLogAppendTime(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Config(runnel.Config{Clock: preEpochClock{}}),
		runneltest.TopicConfig("lat", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampType: log.LogAppendTime}}))
	r := &record.Record{Value: []byte("v"), Timestamp: time.UnixMilli(1000)}
	runneltest.Produce(t, b, "lat", r)
	got := runneltest.ConsumeAll(t, b, "lat")
	require.Len(t, got, 1)
	require.EqualValues(t, -5000, got[0].Timestamp.UnixMilli())
	require.Equal(t, got[0].TimestampType, r.TimestampType, "as stored")
	require.Equal(t, got[0].Timestamp.UnixMilli(), r.Timestamp.UnixMilli(), "as stored")
}

// On a topic with LogAppendTime the broker stamps the records: Produce
// gives each record the timestamp it was stored with, as a producer's
// promise does, not the one it was handed (which is nowhere in the log).
func TestProduceLogAppendTime(t *testing.T) {
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
