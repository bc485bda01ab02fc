package runnel

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// The broker's side of message.timestamp.before.max.ms and after.max.ms
// (log.Config's TimestampBeforeMax and TimestampAfterMax): a produce
// refused with INVALID_TIMESTAMP, the broker's defaults, a live change,
// and the config kept across a restart.

// tsProduce produces one record stamped ts (Unix ms) to topic's
// partition 0.
func tsProduce(t *testing.T, b *Broker, topic string, ts int64) (api.ProduceResponse, error) {
	t.Helper()
	return b.Produce(context.Background(), &api.ProduceRequest{Topic: topic, Acks: api.AcksAll, Batches: batchAt(t, ts, "v")})
}

// requireInvalidTimestamp checks that err is the broker's refusal of a
// timestamp (INVALID_TIMESTAMP, 32, not retriable) and that topic's log
// end is still end.
func requireInvalidTimestamp(t *testing.T, b *Broker, topic string, end int64, err error) {
	t.Helper()
	require.ErrorIs(t, err, log.ErrInvalidTimestamp)
	require.EqualValues(t, 32, api.Code(err), "INVALID_TIMESTAMP: %v", err)
	require.Equal(t, "INVALID_TIMESTAMP", api.Name(err))
	require.False(t, api.IsRetriable(err))
	info, derr := b.DescribeTopic(context.Background(), topic)
	require.NoError(t, derr)
	require.Equal(t, end, info.Partitions[0].LogEndOffset, "nothing appended")
}

// TestTimestampBoundsBroker: a topic created without configs refuses a
// record stamped more than an hour ahead of the broker's clock
// (Config.Clock), Kafka 4's default, and takes one an hour ahead; the
// broker's TopicDefaults set the bounds of the topics that do not set
// their own, and a topic's own (a negative one for no limit) wins;
// DescribeTopic reports them.
func TestTimestampBoundsBroker(t *testing.T) {
	ctx := context.Background()
	clock := &stepClock{}
	clock.ns.Store(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC).UnixNano())
	now := clock.Now().UnixMilli()
	const hour = int64(3_600_000)

	b := open(t, Config{Clock: clock})
	require.NoError(t, b.CreateTopic(ctx, "plain", log.TopicConfig{Partitions: 1}))
	_, err := tsProduce(t, b, "plain", now+hour)
	require.NoError(t, err)
	_, err = tsProduce(t, b, "plain", now+hour+1)
	requireInvalidTimestamp(t, b, "plain", 1, err)
	info, err := b.DescribeTopic(ctx, "plain")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.TimestampAfterMax)
	require.Zero(t, info.Config.TimestampBeforeMax, "unlimited")
	require.Zero(t, info.Overrides.TimestampAfterMax)

	d := open(t, Config{Clock: clock, TopicDefaults: log.Config{TimestampBeforeMax: time.Minute, TimestampAfterMax: -1}})
	require.NoError(t, d.CreateTopic(ctx, "defaults", log.TopicConfig{Partitions: 1}))
	require.NoError(t, d.CreateTopic(ctx, "own", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampBeforeMax: -1, TimestampAfterMax: time.Minute}}))
	_, err = tsProduce(t, d, "defaults", math.MaxInt64)
	require.NoError(t, err, "the broker's default: no limit ahead")
	_, err = tsProduce(t, d, "defaults", now-hour)
	requireInvalidTimestamp(t, d, "defaults", 1, err)
	_, err = tsProduce(t, d, "own", now-1000*hour)
	require.NoError(t, err, "the topic's own: no limit behind")
	_, err = tsProduce(t, d, "own", now+hour)
	requireInvalidTimestamp(t, d, "own", 1, err)
	info, err = d.DescribeTopic(ctx, "defaults")
	require.NoError(t, err)
	require.Equal(t, time.Minute, info.Config.TimestampBeforeMax)
	require.Equal(t, time.Duration(-1), info.Config.TimestampAfterMax)
	require.Zero(t, info.Overrides.TimestampBeforeMax)
	info, err = d.DescribeTopic(ctx, "own")
	require.NoError(t, err)
	require.Equal(t, log.Config{TimestampBeforeMax: -1, TimestampAfterMax: time.Minute}, info.Overrides)

	// Every Duration is a value (negative: no limit; below 1 ms: Kafka's
	// 0): there is none to refuse.
	for _, c := range []log.Config{
		{TimestampBeforeMax: math.MinInt64, TimestampAfterMax: math.MinInt64},
		{TimestampBeforeMax: math.MaxInt64, TimestampAfterMax: math.MaxInt64},
		{TimestampBeforeMax: time.Nanosecond, TimestampAfterMax: time.Nanosecond},
	} {
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: c}))
		require.NoError(t, b.DeleteTopic(ctx, "t"))
	}
}

// TestTimestampBoundsAlteredLive: AlterTopicConfig's new bounds hold from
// the next append on, and a restart keeps them, as it keeps every topic
// config (the topic's record).
func TestTimestampBoundsAlteredLive(t *testing.T) {
	ctx := context.Background()
	clock := &stepClock{}
	clock.ns.Store(time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC).UnixNano())
	now := clock.Now().UnixMilli()
	const day = int64(24 * 3_600_000)
	cfg := Config{Dir: "/data", FS: vfs.NewMem(), Clock: clock}
	b, err := Open(cfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	_, err = tsProduce(t, b, "t", now+day)
	requireInvalidTimestamp(t, b, "t", 0, err)

	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{TimestampAfterMax: -1}))
	_, err = tsProduce(t, b, "t", now+day)
	require.NoError(t, err, "no limit ahead since the change")
	_, err = tsProduce(t, b, "t", now-day)
	require.NoError(t, err)

	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
		c.TimestampBeforeMax, c.TimestampAfterMax = time.Hour, time.Nanosecond // Kafka's 0: nothing ahead
	}))
	_, err = tsProduce(t, b, "t", now-day)
	requireInvalidTimestamp(t, b, "t", 2, err)
	_, err = tsProduce(t, b, "t", now+1)
	requireInvalidTimestamp(t, b, "t", 2, err)
	_, err = tsProduce(t, b, "t", now)
	require.NoError(t, err)

	require.NoError(t, b.Close())
	b, err = Open(cfg)
	require.NoError(t, err)
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, log.Config{TimestampBeforeMax: time.Hour, TimestampAfterMax: time.Nanosecond}, info.Overrides)
	_, err = tsProduce(t, b, "t", now-day)
	requireInvalidTimestamp(t, b, "t", 3, err)
	_, err = tsProduce(t, b, "t", now+1)
	requireInvalidTimestamp(t, b, "t", 3, err)
	_, err = tsProduce(t, b, "t", now)
	require.NoError(t, err)
}
