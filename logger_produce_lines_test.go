package runnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestProduceErrorLinesNameThePartition: the lines a raw Broker.Produce
// makes the broker log as it fails, each about the one partition it
// appends to, name it with topic= and partition= (the keys of
// docs/details.md, "Monitoring an embedded broker", Lines), whichever
// error it is: a segment roll that fails (segment roll failed, then
// still failing), the removal of its files not synced, a failed write and
// a failed fsync, each fencing the log (log fenced, sync-failed
// checkpoint not written); and so does the line of the topic
// AutoCreateTopics creates (topic= alone: it is about the topic). An
// operator reported lines of Produce's errors without them; each comes
// from the partition's log, whose Logger the broker gives both
// (partitionLogger), so a handler that keeps the attributes of WithAttrs,
// as slog's contract asks, finds them all.
func TestProduceErrorLinesNameThePartition(t *testing.T) {
	ctx := context.Background()
	var failCreate, noDir, failSync, failWrite atomic.Bool
	fsys := noSyncDirFS{FS: vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		n := filepath.ToSlash(name)
		switch {
		case op == vfs.OpCreate && failCreate.Load() && strings.HasSuffix(n, ".log") && strings.Contains(n, "/roll-0/"):
			return syscall.EMFILE
		case op == vfs.OpSync && failSync.Load() && strings.Contains(n, "/sync-1/"):
			return errors.New("injected fsync failure")
		case op == vfs.OpWrite && failWrite.Load() && strings.Contains(n, "/write-2/"):
			return errors.New("injected write failure")
		}
		return nil
	})), noDir: &noDir}
	var mu sync.Mutex
	var lines []map[string]string
	b, err := Open(Config{FS: fsys, Dir: "/d", MaintenanceInterval: time.Hour, AutoCreateTopics: true, DefaultPartitions: 1,
		TopicDefaults: log.Config{SegmentBytes: 300, RetentionTime: -1},
		Logger:        slog.New(attrsHandler{mu: &mu, lines: &lines})})
	require.NoError(t, err)
	defer func() {
		failCreate.Store(false)
		noDir.Store(false)
		failSync.Store(false)
		failWrite.Store(false)
		require.NoError(t, b.Close())
	}()
	targets := []struct {
		topic     string
		partition int32
		err       error
	}{{"roll", 0, log.ErrRollFailed}, {"sync", 1, log.ErrLogFenced}, {"write", 2, log.ErrLogFenced}}
	for _, tp := range targets {
		require.NoError(t, b.CreateTopic(ctx, tp.topic, log.TopicConfig{Partitions: int(tp.partition) + 1}))
	}
	produce := func(topic string, partition int32, i int) error {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: partition, Acks: api.AcksAll, Batches: batch(t, fmt.Sprint("v", i))})
		return err
	}
	for i := range 10 {
		require.NoError(t, produce("roll", 0, i))
	}
	require.NoError(t, produce("auto", 0, 0))
	mu.Lock()
	autoLines := 0
	for _, m := range lines { // the auto-created topic's line, and the logs' created, rolled
		if m["msg"] == "auto-created topic" {
			autoLines++
			require.Equal(t, "auto", m["topic"], "%v", m)
			require.NotContains(t, m, "partition", "%v", m)
		}
	}
	require.Equal(t, 1, autoLines, "auto-created topic lines: %v", lines)
	lines = nil
	mu.Unlock()
	failCreate.Store(true)
	noDir.Store(true)
	failSync.Store(true)
	failWrite.Store(true)
	rollsFailed := 0
	for i := range 20 {
		for _, tp := range targets {
			err := produce(tp.topic, tp.partition, i)
			if tp.topic == "roll" && err == nil {
				continue // no roll: the segment had room
			}
			require.ErrorIs(t, err, tp.err, "%s-%d, produce %d", tp.topic, tp.partition, i)
			if tp.topic == "roll" {
				rollsFailed++
			}
		}
	}
	require.Greater(t, rollsFailed, 10)

	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for _, m := range lines {
		seen[m["msg"]]++
		topic := m["topic"]
		require.NotEmpty(t, topic, "a line without topic=: %v", m)
		var partition int32
		for _, tp := range targets {
			if tp.topic == topic {
				partition = tp.partition
			}
		}
		require.Equal(t, fmt.Sprint(partition), m["partition"], "%v", m)
	}
	for _, msg := range []string{"segment roll failed", "segment roll still failing", "removal of a failed roll's files not synced",
		"log fenced", "sync-failed checkpoint not written"} {
		require.Positive(t, seen[msg], "%q not logged: %v", msg, seen)
	}
	require.Equal(t, 2, seen["log fenced"], "%v", seen) // sync-1 and write-2, once each
}
