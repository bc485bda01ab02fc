package runneltest_test

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestHelpersBadInput: every helper fails the test, through t.Fatalf,
// with a message that names the error (the sentinel's text, for the
// errors that have one), rather than panic; and the records produced
// before are all still there.
func TestHelpersBadInput(t *testing.T) {
	b := runneltest.NewBroker(t,
		runneltest.TopicConfig("t", log.TopicConfig{Partitions: 2, Config: log.Config{MaxMessageBytes: 1000}}),
		runneltest.Topic("gone", 1))
	runneltest.ProduceValues(t, b, "t", "a", "b")
	runneltest.CreateTopic(t, b, "other", log.TopicConfig{Partitions: 1})
	require.NoError(t, b.DeleteTopic(t.Context(), "gone"))
	var nilBroker *runnel.Broker

	for _, tc := range []struct {
		name string
		call func(ft *fakeT)
		want string // in the message
	}{
		{"NewBroker invalid topic", func(ft *fakeT) { runneltest.NewBroker(ft, runneltest.Topic("a b", 1)) }, runnel.ErrInvalidTopic.Error()},
		{"NewBroker empty topic", func(ft *fakeT) { runneltest.NewBroker(ft, runneltest.Topic("", 1)) }, runnel.ErrInvalidTopic.Error()},
		{"NewBroker zero partitions", func(ft *fakeT) { runneltest.NewBroker(ft, runneltest.Topic("x", 0)) }, runnel.ErrInvalidPartitions.Error()},
		{"NewBroker topic twice", func(ft *fakeT) { runneltest.NewBroker(ft, runneltest.Topic("x", 1), runneltest.Topic("x", 2)) }, runnel.ErrTopicExists.Error()},
		{"NewBroker bad topic config", func(ft *fakeT) {
			runneltest.NewBroker(ft, runneltest.TopicConfig("x", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 1}}))
		}, log.ErrInvalidConfig.Error()},
		{"NewBroker bad Config", func(ft *fakeT) {
			runneltest.NewBroker(ft, runneltest.Config(runnel.Config{DefaultPartitions: -1}))
		}, runnel.ErrInvalidPartitions.Error()},
		{"NewBroker nil Option", func(ft *fakeT) { runneltest.NewBroker(ft, nil, runneltest.Topic("", 1)) }, runnel.ErrInvalidTopic.Error()},

		{"CreateTopic invalid", func(ft *fakeT) { runneltest.CreateTopic(ft, b, "..", log.TopicConfig{Partitions: 1}) }, runnel.ErrInvalidTopic.Error()},
		{"CreateTopic exists", func(ft *fakeT) { runneltest.CreateTopic(ft, b, "t", log.TopicConfig{Partitions: 1}) }, runnel.ErrTopicExists.Error()},
		{"CreateTopic nil broker", func(ft *fakeT) { runneltest.CreateTopic(ft, nilBroker, "n", log.TopicConfig{Partitions: 1}) }, "nil"},

		{"NewProducer nil broker", func(ft *fakeT) { runneltest.NewProducer(ft, nilBroker) }, producer.ErrInvalidOption.Error()},
		{"NewProducer bad option", func(ft *fakeT) { runneltest.NewProducer(ft, b, producer.MaxInFlight(6)) }, producer.ErrInvalidOption.Error()},
		{"NewProducer nil client", func(ft *fakeT) { runneltest.NewProducer(ft, nil) }, producer.ErrInvalidOption.Error()},
		{"NewConsumer nil broker", func(ft *fakeT) { runneltest.NewConsumer(ft, nilBroker) }, consumer.ErrInvalidOption.Error()},
		{"NewConsumer nil client", func(ft *fakeT) { runneltest.NewConsumer(ft, nil) }, consumer.ErrInvalidOption.Error()},
		{"NewConsumer bad option", func(ft *fakeT) { runneltest.NewConsumer(ft, b, consumer.FetchMaxBytes(0)) }, consumer.ErrInvalidOption.Error()},

		{"Produce nil broker", func(ft *fakeT) { runneltest.ProduceValues(ft, nilBroker, "t", "x") }, "nil"},
		{"Produce unknown topic", func(ft *fakeT) { runneltest.ProduceValues(ft, b, "nope", "x") }, runnel.ErrUnknownTopic.Error()},
		{"Produce deleted topic", func(ft *fakeT) { runneltest.ProduceValues(ft, b, "gone", "x") }, runnel.ErrUnknownTopic.Error()},
		{"Produce invalid topic", func(ft *fakeT) { runneltest.ProduceValues(ft, b, "", "x") }, runnel.ErrInvalidTopic.Error()},
		{"Produce negative partition", func(ft *fakeT) {
			runneltest.Produce(ft, b, "t", &record.Record{Partition: -1})
		}, runnel.ErrUnknownTopic.Error()},
		{"Produce over max.message.bytes", func(ft *fakeT) {
			runneltest.ProduceValues(ft, b, "t", strings.Repeat("v", 2000))
		}, log.ErrRecordTooLarge.Error()},
		{"Produce nil record", func(ft *fakeT) { runneltest.Produce(ft, b, "t", nil) }, "nil"},
		// A Timestamp past an int64 of Unix milliseconds: its UnixMilli
		// wraps (to 384 ms here, 1970), and the record was stored with
		// that timestamp.
		{"Produce timestamp past int64 ms", func(ft *fakeT) {
			runneltest.Produce(ft, b, "t", &record.Record{Value: []byte("far"), Timestamp: time.Unix(2*(math.MaxInt64/1000+1), 0)})
		}, "past what an int64"},
		{"Produce timestamp before int64 ms", func(ft *fakeT) {
			runneltest.Produce(ft, b, "t", &record.Record{Value: []byte("far"), Timestamp: time.UnixMilli(math.MinInt64).Add(-time.Millisecond)})
		}, "past what an int64"},

		{"Produce nil client", func(ft *fakeT) { runneltest.ProduceValues(ft, nil, "t", "x") }, "nil client"},
		{"Produce nil Faults", func(ft *fakeT) { runneltest.ProduceValues(ft, (*runneltest.Faults)(nil), "t", "x") }, "nil *runneltest.Faults"},

		{"Consume nil broker", func(ft *fakeT) { runneltest.Consume(ft, nilBroker, "t", 1) }, "nil *runnel.Broker"},
		{"Consume nil client", func(ft *fakeT) { runneltest.Consume(ft, nil, "t", 1) }, "nil client"},
		{"Consume nil Faults", func(ft *fakeT) { runneltest.Consume(ft, (*runneltest.Faults)(nil), "t", 1) }, "nil *runneltest.Faults"},
		{"ConsumeAll nil client", func(ft *fakeT) { runneltest.ConsumeAll(ft, nil, "t") }, "nil client"},
		// A Client that says a topic has a negative partition count: the
		// reader's make panicked.
		// And no partition at all: a key's partition divided by zero.
		{"Produce zero partition count", func(ft *fakeT) {
			runneltest.Produce(ft, countClient{b, 0}, "t", &record.Record{Key: []byte("k")})
		}, "0 partitions"},
		{"Consume negative partition count", func(ft *fakeT) { runneltest.Consume(ft, countClient{b, -1}, "t", 1) }, "-1 partitions"},
		{"ConsumeAll negative partition count", func(ft *fakeT) { runneltest.ConsumeAll(ft, countClient{b, -1}, "t") }, "-1 partitions"},
		{"Consume negative n", func(ft *fakeT) { runneltest.Consume(ft, b, "t", -1) }, "n = -1"},
		{"Consume Timeout 0", func(ft *fakeT) { runneltest.Consume(ft, b, "t", 1, runneltest.Timeout(0)) }, "not positive"},
		{"ConsumeAll negative Timeout", func(ft *fakeT) { runneltest.ConsumeAll(ft, b, "t", runneltest.Timeout(-time.Second)) }, "not positive"},
		{"Consume unknown topic", func(ft *fakeT) { runneltest.Consume(ft, b, "nope", 1) }, runnel.ErrUnknownTopic.Error()},
		{"Consume invalid topic", func(ft *fakeT) { runneltest.Consume(ft, b, "a/b", 1) }, runnel.ErrInvalidTopic.Error()},
		{"ConsumeAll nil broker", func(ft *fakeT) { runneltest.ConsumeAll(ft, nilBroker, "t") }, "nil"},
		{"ConsumeAll deleted topic", func(ft *fakeT) { runneltest.ConsumeAll(ft, b, "gone") }, runnel.ErrUnknownTopic.Error()},
		{"ConsumeAll invalid topic", func(ft *fakeT) { runneltest.ConsumeAll(ft, b, "") }, runnel.ErrInvalidTopic.Error()},
	} {
		var ft *fakeT
		t.Run(tc.name, func(t *testing.T) {
			ft = fails(t, tc.call)
			require.True(t, ft.failed, "the test did not fail")
			require.Contains(t, ft.msg, tc.want)
		})
	}

	// Nothing lost, and the helpers still work.
	require.Equal(t, []string{"a", "b"}, values(runneltest.ConsumeAll(t, b, "t")))
	runneltest.ProduceValues(t, b, "t", "c")
	require.Equal(t, []string{"a", "b", "c"}, values(runneltest.Consume(t, b, "t", 3)))
	require.Equal(t, []string{"other", "t"}, b.Topics())
}

// TestNilConsumeOptSkipped: a nil ConsumeOpt is skipped, as NewBroker
// skips a nil Option (and producer.New and consumer.New theirs); it
// panicked calling a nil func.
func TestNilConsumeOptSkipped(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	runneltest.ProduceValues(t, b, "t", "a")
	require.Equal(t, []string{"a"}, values(runneltest.Consume(t, b, "t", 1, nil)))
	require.Equal(t, []string{"a"}, values(runneltest.ConsumeAll(t, b, "t", nil, runneltest.Timeout(time.Minute))))
}

// countClient is a Client that reports n partitions for every topic.
type countClient struct {
	*runnel.Broker
	n int
}

func (c countClient) Partitions(context.Context, string) (int, error) { return c.n, nil }
