package runnel

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestExplicitUnlimitedReopensNothing: a config change that only
// spells "unlimited" or "never" another way — Kafka's retention.bytes=-1
// over the default (0, unlimited), -1 over a broker default of -2 for
// retention.ms and segment.ms, max.compaction.lag.ms -1 over the default
// (0, never), flush.messages and flush.ms under SyncAlways, which ignores
// them — leaves the logs running as they do, and, as
// UpdateTopicConfig documents for "one that sets explicitly what a
// default gave", reopens nothing; it closed and reopened every partition
// (pausing its appends and reads, and fencing it should the open fail),
// the comparison keeping each negative value as it was.
func TestExplicitUnlimitedReopensNothing(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{TopicDefaults: log.Config{RetentionTime: -2, SegmentTime: -3}, MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	logs := func() []*log.Log { return partitionLogs(b, "t") }
	before := logs()
	set := log.Config{RetentionBytes: -1, RetentionTime: -1, SegmentTime: -1, MaxCompactionLag: -1,
		FlushMessages: 10, FlushInterval: time.Second} // which SyncAlways, the default, ignores
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { *c = set }))
	for i, l := range logs() {
		require.True(t, before[i] == l, "partition %d was reopened", i)
	}
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, set, info.Overrides, "the config as set is recorded")

	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.RetentionBytes = 1 << 30 }))
	require.True(t, before[0] != logs()[0], "a change reopens")
	require.EqualValues(t, 1<<30, logs()[1].Config().RetentionBytes)

	// Under SyncPeriodic, which reads them, a change of either reopens.
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.Sync = log.SyncPeriodic }))
	for _, change := range []func(*log.Config){
		func(c *log.Config) { c.FlushMessages = 20 },
		func(c *log.Config) { c.FlushInterval = 2 * time.Second },
	} {
		before = logs()
		require.NoError(t, b.UpdateTopicConfig(ctx, "t", change))
		require.True(t, before[0] != logs()[0], "a change of flush.messages or flush.ms under SyncPeriodic reopens")
	}
	require.EqualValues(t, 20, logs()[0].Config().FlushMessages)
	require.Equal(t, 2*time.Second, logs()[1].Config().FlushInterval)
}

// TestChangedTimesReopen: a change of segment.ms, retention.ms
// or max.compaction.lag.ms to another positive value (over the default,
// or over one set before) reopens the partitions, which then run with
// it: UpdateTopicConfig's "a config the logs already run with" folds
// only the negative ("never") values into one
// (TestExplicitUnlimitedReopensNothing). Kills the mutants that
// fold every SegmentTime, or every MaxCompactionLag, that is not zero
// into one (the change was recorded but the logs kept the old value).
func TestChangedTimesReopen(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	logs := func() []*log.Log { return partitionLogs(b, "t") }
	for _, tc := range []struct {
		name string
		set  func(c *log.Config, d time.Duration)
		get  func(c log.Config) time.Duration
	}{
		{"segment.ms", func(c *log.Config, d time.Duration) { c.SegmentTime = d }, func(c log.Config) time.Duration { return c.SegmentTime }},
		{"retention.ms", func(c *log.Config, d time.Duration) { c.RetentionTime = d }, func(c log.Config) time.Duration { return c.RetentionTime }},
		{"max.compaction.lag.ms", func(c *log.Config, d time.Duration) { c.MaxCompactionLag = d }, func(c log.Config) time.Duration { return c.MaxCompactionLag }},
	} {
		for _, d := range []time.Duration{time.Hour, 2 * time.Hour} {
			before := logs()
			require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { tc.set(c, d) }))
			for i, l := range logs() {
				require.True(t, before[i] != l, "%s set to %v: partition %d not reopened", tc.name, d, i)
				require.Equal(t, d, tc.get(l.Config()), "%s of partition %d's log", tc.name, i)
			}
		}
	}
}

// TestConfigChangeGivesUpBeforeTheLocksWhenStopped: a config
// change that reopens, whose ctx ends (or whose broker's Close begins)
// after the call took the admin token and before it takes the
// partitions' locks — here during its update func — returns ctx's error
// (ErrClosed) with nothing changed, also when the locks are free (a free
// lock is taken whatever the ctx): the call looks before it takes them
// (lockPartitions's adminStop). Kills the mutant that drops that look:
// the change was written and the partitions reopened, the call
// answering nil after its ctx had ended (or the broker closed).
func TestConfigChangeGivesUpBeforeTheLocksWhenStopped(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stop    func(t *testing.T, b *Broker, cancel context.CancelFunc) (wait func())
		wantErr error
	}{
		{"ctx ended", func(_ *testing.T, _ *Broker, cancel context.CancelFunc) func() {
			cancel()
			return func() {}
		}, context.Canceled},
		{"Close begun", func(t *testing.T, b *Broker, _ context.CancelFunc) func() {
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			for deadline := time.Now().Add(testkit.HangGuard); !b.closed.Load(); runtime.Gosched() {
				if time.Now().After(deadline) {
					t.Error("Close did not begin")
					break
				}
			}
			return func() { require.NoError(t, testkit.Await(t, closed, "Close's answer")) }
		}, ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{FS: vfs.NewMem(), MaintenanceInterval: time.Hour}
			b := open(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
			topic := b.topics["t"] // a closed broker holds no topics (see release)
			before := []*log.Log{topic.Partitions[0].Log(), topic.Partitions[1].Log()}
			var wait func()
			err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) {
				c.RetentionTime = time.Hour // reopens
				wait = tc.stop(t, b, cancel)
			})
			require.ErrorIs(t, err, tc.wantErr)
			wait()
			for i, p := range topic.Partitions {
				require.True(t, p.Log() == before[i], "partition %d reopened", i)
			}
			if b.closed.Load() {
				b = open(t, cfg) // what the closed one recorded
			} else {
				require.True(t, b.topics["t"] == topic, "the topic was replaced")
			}
			require.Zero(t, b.topics["t"].Config.Config.RetentionTime, "the change was recorded")
		})
	}
}

// TestReopenReleasesEachPartitionOnceReopened: a config change
// reopens a topic's partitions in order and releases each once it is
// reopened (UpdateTopicConfig's doc): while partition 1's reopen hangs in
// the old log's fsync (a disk that hangs), partition 0, reopened, takes
// appends and answers reads. Kills the mutant that keeps every
// partition's lock until the last reopen is done (the Produce to
// partition 0 waited for partition 1's disk, until its ctx's bound).
func TestReopenReleasesEachPartitionOnceReopened(t *testing.T) {
	b, fs, _ := openStuck(t, 2)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 1, "x")
	altered, release := stickReopen(t, b, fs, 1)                // partition 0 reopened, partition 1's reopen stuck
	bctx, cancel := context.WithTimeout(ctx, testkit.HangGuard) // a hang guard
	defer cancel()
	_, err := b.Produce(bctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "b")})
	require.NoError(t, err, "a Produce to partition 0, reopened, while partition 1's reopen hangs")
	resp, err := b.Fetch(bctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, values(t, resp.Partitions[0].Records))
	release()
	require.NoError(t, testkit.Await(t, altered, "the stuck config change's answer"))
	require.Equal(t, time.Hour, b.topics["t"].Partitions[1].Log().Config().RetentionTime)
}
