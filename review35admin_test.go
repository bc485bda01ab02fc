package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestReview35AdminCallsHeedCtxBehindAStuckAppend: while an append of a
// topic's partition hangs in its write to a disk that hangs (holding the
// partition's lock shared), the admin calls that need that partition's
// lock exclusively — DeleteTopic (to discard its log), AlterTopicConfig
// and UpdateTopicConfig with a change that reopens the logs — return
// with their ctx's error when their ctx ends (before the call, during
// its wait, by a deadline), and leave the topic exactly as it was: still
// there, its config unchanged, its record on disk unchanged, its other
// partition serving. CreatePartitions, which takes no lock of the
// partitions there are, goes through. Once the write goes on, the stuck
// append is acknowledged and the admin calls work.
//
// Before the fix each of them waited for the stuck append whatever its
// ctx, holding the broker's admin token: DeleteTopic in
// log.Partition.Discard (and had removed the topic's record already),
// the config changes in log.Partition.Reopen (with the new record
// written), both of which took the partition's lock with
// context.Background().
func TestReview35AdminCallsHeedCtxBehindAStuckAppend(t *testing.T) {
	b, fs, mem := openStuck(t, 2)
	ctx := context.Background()
	produce(t, b, "t", 0, "a0")
	produce(t, b, "t", 1, "a1")
	recordPath := b.metaPath("t")
	record, err := b.readFile(recordPath)
	require.NoError(t, err)
	before, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)

	// Partition 1's append hangs: an admin call takes partition 0's lock
	// (free) before it waits for partition 1's.
	stuck, release := stickAppend(t, b, fs, 1, "b1")

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"DeleteTopic", func(ctx context.Context) error { return b.DeleteTopic(ctx, "t") }},
		{"AlterTopicConfig", func(ctx context.Context) error {
			return b.AlterTopicConfig(ctx, "t", log.Config{RetentionTime: time.Hour})
		}},
		{"UpdateTopicConfig", func(ctx context.Context) error {
			return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 })
		}},
	}
	for _, call := range calls {
		// Waiting for a partition's lock, before the fix and after.
		waits := [][]string{{"runnel.(*Broker)." + call.name + "(", "semaphore.(*Weighted).Acquire("}}
		requireEndsWithCtx(t, call.name, call.call, release, waits, func(what string) {
			// The topic is as it was.
			require.Equal(t, []string{"t"}, b.Topics(), what)
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err, what)
			require.Equal(t, before.ID, info.ID, what)
			require.Equal(t, before.Config, info.Config, what)
			require.Equal(t, before.Overrides, info.Overrides, what)
			got, err := b.readFile(recordPath)
			require.NoError(t, err, what)
			require.Equal(t, string(record), string(got), what+": the topic's record changed")
			// Partition 0, whose lock the call took first, serves again.
			produced := make(chan error, 1)
			go func() {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "p0")})
				produced <- err
			}()
			require.NoError(t, within(t, produced, release, what+": a Produce to partition 0 after it"), what)
		})
	}

	// CreatePartitions takes no lock of the partitions there are.
	grown := make(chan error, 1)
	go func() { grown <- b.CreatePartitions(ctx, "t", 3) }()
	require.NoError(t, within(t, grown, release, "CreatePartitions"))
	// Nor does a config change that the logs run as they did.
	same := make(chan error, 1)
	go func() { same <- b.AlterTopicConfig(ctx, "t", before.Overrides) }()
	require.NoError(t, within(t, same, release, "AlterTopicConfig (no change)"))

	release()
	require.NoError(t, <-stuck)
	require.NoError(t, b.AlterTopicConfig(ctx, "t", log.Config{RetentionTime: time.Hour}))
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.RetentionTime)
	require.Len(t, info.Partitions, 3)
	produce(t, b, "t", 1, "c1")
	resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 1}}})
	require.NoError(t, err)
	require.Equal(t, []string{"a1", "b1", "c1"}, values(t, resp.Partitions[0].Records))
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 1 << 20 }))
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.Empty(t, b.Topics())
	require.NoError(t, b.Close())

	b, err = Open(Config{FS: mem, Dir: "/data"})
	require.NoError(t, err)
	defer b.Close()
	require.Empty(t, b.Topics())
}

// TestReview35CloseEndsAnAdminCallBehindAStuckAppend: a DeleteTopic and
// an AlterTopicConfig whose ctx never ends, waiting for a partition's lock
// behind an append stuck in its write, return ErrClosed once the broker's
// Close begins, changing nothing (as a CreateTopic that Close overtakes
// creates nothing); Close itself waits for the stuck write, as it
// documents, and the next Open finds the topic, its config and its
// acknowledged records.
func TestReview35CloseEndsAnAdminCallBehindAStuckAppend(t *testing.T) {
	for _, call := range []struct {
		name string
		call func(b *Broker) error
	}{
		{"DeleteTopic", func(b *Broker) error { return b.DeleteTopic(context.Background(), "t") }},
		{"AlterTopicConfig", func(b *Broker) error {
			return b.AlterTopicConfig(context.Background(), "t", log.Config{RetentionTime: time.Hour})
		}},
	} {
		t.Run(call.name, func(t *testing.T) {
			b, fs, mem := openStuck(t, 1)
			ctx := context.Background()
			produce(t, b, "t", 0, "a")

			stuck, release := stickAppend(t, b, fs, 0, "b")
			done := make(chan error, 1)
			go func() { done <- call.call(b) }()
			waitForStack(t, "runnel.(*Broker)."+call.name+"(", "semaphore.(*Weighted).Acquire(")
			closed := make(chan error, 1)
			go func() { closed <- b.Close() }()
			require.ErrorIs(t, within(t, done, release, call.name), ErrClosed)
			release()
			require.NoError(t, <-stuck)
			require.NoError(t, <-closed)

			b, err := Open(Config{FS: mem, Dir: "/data"})
			require.NoError(t, err)
			defer b.Close()
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.Equal(t, log.Config{}, info.Overrides)
			resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
			require.NoError(t, err)
			require.Equal(t, []string{"a", "b"}, values(t, resp.Partitions[0].Records))
		})
	}
}

// TestReview35DescribeTopicHeedsItsCtxBehindAStuckReopen: while a config
// change's reopen of a partition hangs in the old log's closing fsync,
// DescribeTopic, which reads each partition's size from its log, returns
// with its ctx's error when its ctx ends; once the fsync goes on, it
// describes the new config. It waited for the reopen whatever its ctx
// (log.Partition.Log waits with context.Background()).
func TestReview35DescribeTopicHeedsItsCtxBehindAStuckReopen(t *testing.T) {
	b, fs, _ := openStuck(t, 1)
	ctx := context.Background()
	produce(t, b, "t", 0, "a")

	altered, release := stickReopen(t, b, fs, 0)
	requireEndsWithCtx(t, "DescribeTopic", func(ctx context.Context) error {
		_, err := b.DescribeTopic(ctx, "t")
		return err
	}, release, [][]string{{"runnel.(*Broker).DescribeTopic(", "semaphore.(*Weighted).Acquire("}}, nil)

	release()
	require.NoError(t, <-altered)
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	require.Equal(t, time.Hour, info.Config.RetentionTime)
	require.Equal(t, int64(1), info.Partitions[0].LogEndOffset)
	require.Positive(t, info.Partitions[0].Size)
}
