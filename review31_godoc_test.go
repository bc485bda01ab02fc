package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReview31DeletedUnderACallOfAFailedReopen: DeleteTopic's doc says
// that fetches (and produces) under way when the topic is deleted get
// ErrUnknownTopic — ErrUnknownTopicID for a fetch that names the topic's
// ID. That held but for a partition whose reopen after a config change
// had failed: its closed log kept answering log.ErrLogFenced after
// DeleteTopic discarded it, so a consumer took the deleted topic for a
// storage error and retried it.
func TestReview31DeletedUnderACallOfAFailedReopen(t *testing.T) {
	ctx := context.Background()
	var listFault atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpList && strings.Contains(filepath.ToSlash(name), "/t-0") && listFault.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	b := open(t, Config{Dir: "/data", FS: fsys})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	info, err := b.DescribeTopic(ctx, "t")
	require.NoError(t, err)
	listFault.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 2 << 20 }), vfs.ErrInjected)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "x")})
	require.ErrorIs(t, err, log.ErrLogFenced, "its reopen failed")

	for _, named := range []bool{false, true} {
		var id log.TopicID
		if named {
			id = info.ID
		}
		var delErr error
		testHookFetchRead = func() {
			testHookFetchRead = nil
			delErr = b.DeleteTopic(ctx, "t")
		}
		resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", TopicID: id}}})
		testHookFetchRead = nil
		require.NoError(t, err)
		require.NoError(t, delErr)
		got := resp.Partitions[0].Err
		require.ErrorIs(t, got, ErrUnknownTopic, "a fetch under way when the topic was deleted")
		require.NotErrorIs(t, got, log.ErrLogFenced)
		if named {
			require.ErrorIs(t, got, ErrUnknownTopicID, "a fetch that names the topic's ID")
		}
		listFault.Store(false)
		require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
		info, err = b.DescribeTopic(ctx, "t")
		require.NoError(t, err)
		listFault.Store(true)
		require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.SegmentBytes = 3 << 20 }), vfs.ErrInjected)
	}

}
