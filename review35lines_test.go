package runnel

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestReview35LoggerMayCallAdminOnARetryByAConfigCall: Config.Logger
// says an admin call hands on the lines of the logs it opened once it
// has given the admin token back, so that a handler may call the admin
// methods on them. An UpdateTopicConfig that changes nothing tries again
// the failed reopen of a partition (RetryReopen), under the admin token,
// with the options of the call whose reopen failed: the new log's
// recovery lines ("log opened") must wait for the token too.
func TestReview35LoggerMayCallAdminOnARetryByAConfigCall(t *testing.T) {
	ctx := context.Background()
	var failList atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if failList.Load() && op == vfs.OpList && filepath.ToSlash(name) == "/data/t-0" {
			return vfs.ErrInjected
		}
		return nil
	}))
	var b *Broker
	h := onceOnLine("log opened", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, ErrTopicExists) {
			t.Errorf("CreateTopic from the handler: %v", err)
		}
	})
	b = open(t, Config{Dir: "/data", FS: fsys, Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	failList.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	failList.Store(false)
	h.armed.Store(true)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(*log.Config) {})) // retries the reopen
	require.True(t, h.seen.Load(), "the retried reopen logged no \"log opened\"")
	require.True(t, h.returned.Load(), "CreateTopic from the handler of a retried reopen's \"log opened\" blocked: the line was handed on holding the admin token")
	produce(t, b, "t", 0, "b")
}

// TestReview35LoggerMayCallAdminOnAReopenedLogsClose: Config.Logger
// lets a handler call the admin methods on a log's lines. A config
// change reopens each partition under the admin token: the old log's
// Close writes a producer-state snapshot and prunes the old ones, and a
// removal that fails is logged ("producer-state snapshot not removed").
// That line must not reach the handler while the call holds the token.
func TestReview35LoggerMayCallAdminOnAReopenedLogsClose(t *testing.T) {
	ctx := context.Background()
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && filepath.Ext(name) == ".snapshot" {
			return vfs.ErrInjected
		}
		return nil
	}))
	var b *Broker
	h := onceOnLine("producer-state snapshot not removed", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, ErrTopicExists) {
			t.Errorf("CreateTopic from the handler: %v", err)
		}
	})
	b = open(t, Config{Dir: "/data", FS: fsys, Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		produce(t, b, "t", 0, v) // each rolls, and snapshots
	}
	h.armed.Store(true)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }))
	require.True(t, h.seen.Load(), "the reopen's Close logged no \"producer-state snapshot not removed\"")
	require.True(t, h.returned.Load(), "CreateTopic from the handler of a reopened log's Close line blocked: the line was handed on holding the admin token")
}
