package runnel

import (
	"context"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReadmeTopicConfigAtStart: the README's claims on a service that
// applies its topic's config at start: CreateTopic leaves an existing
// topic as it is (ErrTopicExists, whatever config it was asked for), and
// AlterTopicConfig with the config the topic has reopens nothing (the
// partition keeps its log).
func TestReadmeTopicConfigAtStart(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{Dir: t.TempDir()})
	cfg := log.Config{RetentionBytes: 1 << 20}
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: cfg}))
	produce(t, b, "t", 0, "a")

	err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3, Config: log.Config{RetentionBytes: 5 << 20}})
	require.ErrorIs(t, err, ErrTopicExists)
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 1)
	require.Equal(t, cfg, info.Overrides)

	top, err := b.topic("t")
	require.NoError(t, err)
	before := top.Partitions[0].Log()
	require.NoError(t, b.AlterTopicConfig(ctx, "t", cfg))
	require.Same(t, before, top.Partitions[0].Log(), "an unchanged config reopened the log")
	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{RetentionBytes: 2 << 20}))
	require.NotSame(t, before, top.Partitions[0].Log(), "a changed config did not reopen the log")
}

// TestReadmePurgeStream: the README's JetStream table: PurgeStream
// is DeleteRecords to api.Latest for each partition, which a topic that
// is compacted only refuses with ErrPolicyViolation.
func TestReadmePurgeStream(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "d", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{CleanupPolicy: log.Compact}}))
	produce(t, b, "d", 0, "a", "b", "c")
	produce(t, b, "c", 0, "a")

	low, err := b.DeleteRecords(ctx, "d", 0, api.Latest)
	require.NoError(t, err)
	require.EqualValues(t, 3, low)
	lo, err := b.ListOffset(ctx, "d", 0, api.Earliest)
	require.NoError(t, err)
	require.EqualValues(t, 3, lo.Offset)

	_, err = b.DeleteRecords(ctx, "c", 0, api.Latest)
	require.ErrorIs(t, err, ErrPolicyViolation)
}

// TestReadmeSeekBackInRecords: the README's JetStream table: a
// record that failed is handled again after c.Seek back to it, which a
// Records loop yields again before the rest of its partition.
func TestReadmeSeekBackInRecords(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a", "b", "c")

	c, err := consumer.New(b)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Assign("t", 0, consumer.Start()))
	var got []string
	failed := false
	for r, err := range c.Records(ctx) {
		require.NoError(t, err)
		got = append(got, string(r.Value))
		if string(r.Value) == "b" && !failed {
			failed = true
			require.NoError(t, c.Seek("t", 0, consumer.At(r.Offset)))
			continue
		}
		if len(got) == 4 {
			break
		}
	}
	require.Equal(t, []string{"a", "b", "b", "c"}, got)
}
