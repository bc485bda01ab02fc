package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// partitionDirsMade counts the partition directories of topic "t" made
// (MkdirAll of a "t-N" directory) through fs, and runs at, once, when the
// count reaches n.
func partitionDirsMade(fs vfs.FS, made *atomic.Int32, n int32, at func()) vfs.FS {
	return vfs.WithFaults(fs, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op != vfs.OpMkdir || !strings.HasPrefix(filepath.Base(name), "t-") {
			return nil
		}
		if made.Add(1) == n {
			at()
		}
		return nil
	}))
}

// TestCreateTopicHeedsItsCtx: CreateTopic and CreatePartitions with many
// partitions stop between partitions once their ctx ends, with ctx's
// error, creating nothing (no topic, no partition, no directory left); a
// CreateTopic under way when the broker closes stops the same way, so
// that Close, which waits for the admin call in flight, does not wait
// for thousands of logs to be made; it answers ErrClosed.
func TestCreateTopicHeedsItsCtx(t *testing.T) {
	const parts = 200
	t.Run("create", func(t *testing.T) {
		mem := vfs.NewMem()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var made atomic.Int32
		b := open(t, Config{FS: partitionDirsMade(mem, &made, 3, cancel)})
		err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: parts})
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, made.Load(), int32(6), "partitions made after the ctx ended")
		require.Empty(t, b.Topics())
		names, err := mem.List(b.root) // the broker's directory: "." holds only it
		require.NoError(t, err)
		for _, n := range names {
			require.False(t, strings.HasPrefix(n, "t-"), "left behind: %s", n)
		}
		require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 2}), "the name is free")
	})
	t.Run("grow", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var made atomic.Int32
		mem := vfs.NewMem()
		b := open(t, Config{FS: partitionDirsMade(mem, &made, 4, cancel)})
		require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 2}))
		err := b.CreatePartitions(ctx, "t", parts)
		require.ErrorIs(t, err, context.Canceled)
		require.Less(t, made.Load(), int32(7), "partitions made after the ctx ended")
		n, err := b.Partitions(context.Background(), "t")
		require.NoError(t, err)
		require.Equal(t, 2, n)
		names, err := mem.List(b.root)
		require.NoError(t, err)
		for _, n := range names {
			require.False(t, strings.HasPrefix(n, "t-") && n != "t-0" && n != "t-1", "left behind: %s", n)
		}
		require.NoError(t, b.CreatePartitions(context.Background(), "t", 3), "the next partition's name is free")
	})
	t.Run("close", func(t *testing.T) {
		var (
			made   atomic.Int32
			closed = make(chan error, 1)
			b      *Broker
		)
		b = open(t, Config{FS: partitionDirsMade(vfs.NewMem(), &made, 3, func() {
			go func() { closed <- b.Close() }()
			testkit.AwaitParked(t, testkit.Wait{State: "chan send", In: "runnel.(*Broker).Close"}) // for the admin token
		})})
		err := b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: parts})
		require.ErrorIs(t, err, ErrClosed)
		require.NoError(t, testkit.Await(t, closed, "Close's answer"))
		require.Less(t, made.Load(), int32(6), "partitions made after Close began")
	})
}

// TestCreateTopicStopsAtItsCtx: a CreateTopic of many
// partitions whose ctx ends while it opens one (here the fourth) stops
// there, undoing only what it made: it looked at every partition's
// directory again first, ctx ended (a List each: 20,000 for a count of
// 20,000, and as long again as its first pass over them, which its ctx
// did cut short), and so did one that failed at a partition with a file
// system error (the limit of open files, say).
func TestCreateTopicStopsAtItsCtx(t *testing.T) {
	const n = 20_000
	for _, stop := range []string{"ctx", "fault"} {
		t.Run(stop, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stopped, lists atomic.Int64
			inj := vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpList && stopped.Load() > 0 {
					lists.Add(1)
				}
				if op == vfs.OpCreate && strings.Contains(filepath.ToSlash(name), "/t-3/") && stopped.Add(1) == 1 {
					if stop == "ctx" {
						cancel()
						return nil
					}
					return vfs.ErrInjected
				}
				return nil
			})
			b := open(t, Config{FS: vfs.WithFaults(vfs.NewMem(), inj), Dir: "/d"})
			err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: n})
			if stop == "ctx" {
				require.ErrorIs(t, err, context.Canceled)
			} else {
				require.ErrorIs(t, err, vfs.ErrInjected)
			}
			require.Empty(t, b.Topics())
			t.Logf("%d directories listed after the stop", lists.Load())
			require.LessOrEqual(t, lists.Load(), int64(10), "directories listed after the stop")
			names, err := b.fs.List("/d")
			require.NoError(t, err)
			for _, name := range names {
				require.False(t, strings.HasPrefix(name, "t-"), "%s left", name)
			}
		})
	}
}
