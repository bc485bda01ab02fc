package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestConfigChangeDoesNotReopenAFailedLog: a config change does not
// reopen a partition whose log failed an fsync — fenced by it, or by the
// fsync of the close that would reopen it. It used to: the new log took
// the bytes whose fsync had failed (and which the disk may never get) for
// durable, acknowledged the appends after them, whose fsyncs the memory FS
// then makes no more durable than Linux may after a failed fsync, and
// after a power loss the broker either lacked acknowledged records or
// refused to open (the log shorter than its checkpoints: record.ErrCorrupt).
// Found by review.
func TestConfigChangeDoesNotReopenAFailedLog(t *testing.T) {
	for _, how := range []string{"fenced", "close failed"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			mem := vfs.NewMem()
			fsys, armed := failNextLogSync(mem)
			cfg := Config{Dir: "/data", FS: fsys, MaintenanceInterval: time.Hour}
			b, err := Open(cfg)
			require.NoError(t, err)
			defer func() { b.Close() }()
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			a := &acks{t: t}
			send := func(v string) error { return a.send(b, v) }
			require.NoError(t, send("before"))

			armed.Store(true)
			if how == "fenced" {
				require.ErrorIs(t, send("its fsync fails"), log.ErrLogFenced)
			} else {
				_, ack, err := b.ProduceAsync(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "unsynced")})
				require.NoError(t, err)
				require.ErrorIs(t, b.AlterTopicConfig(ctx, "t", log.Config{MaxMessageBytes: 1 << 19}), vfs.ErrInjected)
				err = ack.Wait(ctx)
				require.ErrorIs(t, err, log.ErrLogFenced, "the topic is there: its log failed")
				require.NotErrorIs(t, err, ErrUnknownTopic)
			}
			require.False(t, armed.Load(), "the fault was not reached")

			err = b.AlterTopicConfig(ctx, "t", log.Config{MaxMessageBytes: 1 << 20})
			require.ErrorIs(t, err, log.ErrLogFenced)
			require.ErrorIs(t, err, vfs.ErrInjected, "the error says what failed")
			err = send("after the config change")
			require.ErrorIs(t, err, log.ErrLogFenced)
			require.ErrorIs(t, b.Maintain(ctx), log.ErrLogFenced, "maintenance does not reopen it either")
			require.ErrorIs(t, send("after maintenance"), log.ErrLogFenced)

			afterPowerLoss(t, mem, func(tail vfs.TailMode, got []string) {
				require.Equal(t, a.acked, got[:min(len(a.acked), len(got))], "%s: every acknowledged record is there", tail)
			})
			// The config change applies once the broker opens again.
			require.NoError(t, b.Close())
			b, err = Open(Config{Dir: "/data", FS: mem})
			require.NoError(t, err)
			info, err := b.DescribeTopic(ctx, "t")
			require.NoError(t, err)
			require.Equal(t, 1<<20, info.Config.MaxMessageBytes)
			require.NoError(t, send("after a restart"))
		})
	}
}

// TestDeletedUnderACallOfAFailedReopen: DeleteTopic's doc says
// that fetches (and produces) under way when the topic is deleted get
// ErrUnknownTopic — ErrUnknownTopicID for a fetch that names the topic's
// ID. That held but for a partition whose reopen after a config change
// had failed: its closed log kept answering log.ErrLogFenced after
// DeleteTopic discarded it, so a consumer took the deleted topic for a
// storage error and retried it.
func TestDeletedUnderACallOfAFailedReopen(t *testing.T) {
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
		setFetchReadHook(func() {
			setFetchReadHook(nil)
			delErr = b.DeleteTopic(ctx, "t")
		})
		resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", TopicID: id}}})
		setFetchReadHook(nil)
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
