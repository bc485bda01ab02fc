package runnel

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
)

// TestOpenContextAlreadyCancelled: OpenContext with a ctx that has ended
// returns its error and holds nothing: an Open of the directory follows
// at once. (No goroutine is left: TestMain's goleak.)
func TestOpenContextAlreadyCancelled(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{Dir: "/data", FS: mem}
	b := open(t, cfg)
	require.NoError(t, b.CreateTopic(context.Background(), "a", log.TopicConfig{Partitions: 2}))
	produce(t, b, "a", 1, "x", "y")
	require.NoError(t, b.Close())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b, err := OpenContext(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, b)
	_, err = OpenContext(ctx, Config{}) // in memory
	require.ErrorIs(t, err, context.Canceled)

	b = open(t, cfg)
	_, vals := readPartition(t, b, "a", 1)
	require.Equal(t, []string{"x", "y"}, vals)
}

// TestOpenContextCancelledDuringRecovery: a broker crashed with three
// partitions to recover; its OpenContext is cancelled when the recovery
// of the second reads its first batch. OpenContext returns ctx's error
// having closed the first partition's log (cleanly: it holds the
// clean-shutdown marker) and left the third untouched, and released the
// directory: an Open of it follows at once and finds every acknowledged
// record.
func TestOpenContextCancelledDuringRecovery(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{Dir: "/data", FS: mem, MaintenanceInterval: time.Hour}
	b, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "a", log.TopicConfig{Partitions: 3}))
	want := map[int32][]string{}
	for p := range int32(3) {
		for i := range 20 {
			v := fmt.Sprintf("p%d-%d", p, i)
			produce(t, b, "a", p, v) // AcksAll, fsynced: acknowledged
			want[p] = append(want[p], v)
		}
	}
	crashed := mem.CrashClone(vfs.CrashOptions{})
	require.NoError(t, b.Close())
	marker := func(p int) bool {
		_, err := crashed.Stat(filepath.Join("/data", fmt.Sprintf("a-%d", p), "clean-shutdown"))
		return err == nil
	}
	for p := range 3 {
		require.False(t, marker(p), "a-%d needs recovery", p)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cancelled atomic.Bool
	fsys := vfs.WithFaults(crashed, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRead && strings.HasSuffix(filepath.ToSlash(filepath.Dir(name)), "/a-1") && strings.HasSuffix(name, ".log") {
			cancelled.Store(true)
			cancel()
		}
		return nil
	}))
	cfg.FS = fsys
	b, err = OpenContext(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	require.Nil(t, b)
	require.True(t, cancelled.Load())
	require.True(t, marker(0), "a-0, recovered, was closed")
	require.False(t, marker(1), "a-1 is left to recover")
	require.False(t, marker(2), "a-2 is left to recover")

	cfg.FS = crashed
	b = open(t, cfg) // at once: the lock was released
	for p := range int32(3) {
		_, vals := readPartition(t, b, "a", p)
		require.Equal(t, want[p], vals, "a-%d", p)
	}
}

// TestOpenContextCancelledBetweenPartitions: an OpenContext whose ctx
// ends once a partition has opened, before the next begins, starts no
// other: it returns its own error, naming the directory whose opening
// was cut short, with a-0 closed and a-1 not opened.
func TestOpenContextCancelledBetweenPartitions(t *testing.T) {
	mem := vfs.NewMem()
	cfg := Config{Dir: "/data", FS: mem}
	b := open(t, cfg)
	require.NoError(t, b.CreateTopic(context.Background(), "a", log.TopicConfig{Partitions: 2}))
	require.NoError(t, b.Close())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testHookOpenStarting = func(topic string, id int) {
		if id == 1 {
			cancel()
		}
	}
	t.Cleanup(func() { testHookOpenStarting = nil })
	logger, opened := openedClean()
	cfg.Logger = logger
	b, err := OpenContext(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "runnel: opening /data cut short")
	require.Nil(t, b)
	require.Equal(t, map[string]bool{"a-0": true}, opened(), "the logs opened")
	_, err = mem.Stat("/data/a-0/clean-shutdown")
	require.NoError(t, err, "a-0 closed")
}
