package runnel

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// levelLines records the lines a broker logs, as "LEVEL msg".
type levelLines struct {
	mu    sync.Mutex
	lines []slog.Record
}

func (o *levelLines) logger() *slog.Logger {
	return slog.New(testkit.LineFunc(func(r slog.Record) {
		o.mu.Lock()
		o.lines = append(o.lines, r.Clone())
		o.mu.Unlock()
	}))
}

// count counts the lines of msg at level, and drops every line.
func (o *levelLines) count(level slog.Level, msg string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, r := range o.lines {
		if r.Level == level && r.Message == msg {
			n++
		}
	}
	o.lines = nil
	return n
}

// produceRolls produces n records, one request each, to
// partition 0 of topic "a", whose segments are small enough that they
// roll, and returns how many failed, each with log.ErrRollFailed.
func produceRolls(t *testing.T, b *Broker, n int) (failed int) {
	t.Helper()
	for i := range n {
		_, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: "a", Partition: 0, Acks: api.AcksAll, Batches: batch(t, fmt.Sprint("v", i))})
		if err != nil {
			require.ErrorIs(t, err, log.ErrRollFailed)
			failed++
		}
	}
	return failed
}

// TestRollFailureLoggedOnChange: a segment roll that keeps
// failing (the new segment's files cannot be created: a full inode
// table, a process at its limit of open files) fails every produce that
// would roll, each with ErrRollFailed, the log not fenced; the log says
// so at Warn once, and again when the failure changes or comes back
// after a roll that succeeded, not at every produce (50 produces made
// 50 Warn lines).
func TestRollFailureLoggedOnChange(t *testing.T) {
	ctx := context.Background()
	var failCreate atomic.Bool
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && failCreate.Load() && strings.HasSuffix(name, ".log") && strings.Contains(filepath.ToSlash(name), "/a-0/") {
			return errors.New("injected create failure")
		}
		return nil
	}))
	var o levelLines
	b, err := Open(Config{FS: fs, Dir: "/d", Logger: o.logger(), MaintenanceInterval: time.Hour,
		TopicDefaults: log.Config{SegmentBytes: 300, RetentionTime: -1}})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
	produce := func(n int) int { return produceRolls(t, b, n) }
	produce(20)
	for round := range 2 {
		failCreate.Store(true)
		require.Greater(t, produce(50), 40, "round %d", round)
		require.Equal(t, 1, o.count(slog.LevelWarn, "segment roll failed"), "round %d: one Warn while the roll keeps failing", round)
		failCreate.Store(false)
		require.Zero(t, produce(20), "round %d", round)
	}
}

// TestMaintenanceLineKeys: the broker's lines about a
// partition name it with the keys the producer's and consumer's lines
// use, "topic" and "partition" (its number), not "partition" (the
// topic's name) and "id".
func TestMaintenanceLineKeys(t *testing.T) {
	ctx := context.Background()
	var failSync atomic.Bool
	fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSync && failSync.Load() && strings.Contains(filepath.ToSlash(name), "/a-1/") {
			return errors.New("injected fsync failure")
		}
		return nil
	}))
	var o levelLines
	b, err := Open(Config{FS: fs, Dir: "/d", Logger: o.logger(), MaintenanceInterval: time.Hour})
	require.NoError(t, err)
	defer func() { _ = b.Close() }() // the fenced log's Close fails
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))
	failSync.Store(true)
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "v")})
	require.ErrorIs(t, err, log.ErrLogFenced)
	b.maintainRound(nil, nil)
	o.mu.Lock()
	defer o.mu.Unlock()
	found := false
	for _, r := range o.lines {
		if r.Message != "maintenance failed" {
			continue
		}
		found = true
		attrs := map[string]slog.Value{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		require.Equal(t, "a", attrs["topic"].String())
		require.Equal(t, "1", attrs["partition"].String())
		require.NotContains(t, attrs, "id")
	}
	require.True(t, found)
}

// noSyncDirFS fails SyncDir as os.Open fails at a process's limit
// of open files (an *fs.PathError of Op "open") while noDir is set.
type noSyncDirFS struct {
	vfs.FS
	noDir *atomic.Bool
}

func (f noSyncDirFS) SyncDir(dir string) error {
	if f.noDir.Load() {
		return &fs.PathError{Op: "open", Path: dir, Err: syscall.EMFILE}
	}
	return f.FS.SyncDir(dir)
}

// TestRollRemovalUnsyncedLoggedOnChange: at the limit of open
// files, a roll's new segment cannot be created and the directory
// cannot be opened to sync the removal of its files: every produce that
// would roll fails (ErrRollFailed, the log not fenced) and tries to sync
// the removal again. The log says "removal of a failed roll's files not
// synced" at Warn once while it lasts, not at every produce.
func TestRollRemovalUnsyncedLoggedOnChange(t *testing.T) {
	ctx := context.Background()
	var failCreate, noDir atomic.Bool
	fsys := noSyncDirFS{FS: vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && failCreate.Load() && strings.HasSuffix(name, ".log") && strings.Contains(filepath.ToSlash(name), "/a-0/") {
			return syscall.EMFILE
		}
		return nil
	})), noDir: &noDir}
	var o levelLines
	b, err := Open(Config{FS: fsys, Dir: "/d", Logger: o.logger(), MaintenanceInterval: time.Hour,
		TopicDefaults: log.Config{SegmentBytes: 300, RetentionTime: -1}})
	require.NoError(t, err)
	defer func() {
		failCreate.Store(false)
		noDir.Store(false)
		require.NoError(t, b.Close())
	}()
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
	produce := func(n int) int { return produceRolls(t, b, n) }
	produce(20)
	for round := range 2 {
		failCreate.Store(true)
		noDir.Store(true)
		require.Greater(t, produce(50), 40, "round %d", round)
		require.Equal(t, 1, o.count(slog.LevelWarn, "removal of a failed roll's files not synced"), "round %d: one Warn while it lasts", round)
		failCreate.Store(false)
		noDir.Store(false)
		require.Zero(t, produce(20), "round %d", round)
	}
}

// attrsHandler records each line's message with its attributes,
// those given to WithAttrs first.
type attrsHandler struct {
	mu    *sync.Mutex
	lines *[]map[string]string
	with  []slog.Attr
}

func (h attrsHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h attrsHandler) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	for _, a := range h.with {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	*h.lines = append(*h.lines, m)
	h.mu.Unlock()
	return nil
}

func (h attrsHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.with = append(h.with[:len(h.with):len(h.with)], as...)
	return h
}

func (h attrsHandler) WithGroup(string) slog.Handler { return h }

// TestPartitionLogLinesNameThePartition: the lines of a
// partition's log (its recovery, rolls, retention, compaction, a fence)
// name the partition with the keys of the broker's, the producer's and
// the consumer's lines, topic= and partition=, not only inside dir=, so
// that an operator's filter on topic=orders finds them all; so do those
// of the log a config change's reopen opens.
func TestPartitionLogLinesNameThePartition(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var lines []map[string]string
	b, err := Open(Config{FS: vfs.NewMem(), Dir: "/d", MaintenanceInterval: time.Hour,
		Logger: slog.New(attrsHandler{mu: &mu, lines: &lines})})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 300}}))
	require.NoError(t, b.UpdateTopicConfig(ctx, "a", func(c *log.Config) { c.SegmentBytes = 301 }))
	for i := range 20 {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: 1, Acks: api.AcksAll, Batches: batch(t, fmt.Sprint("v", i))})
		require.NoError(t, err)
	}
	mu.Lock()
	defer mu.Unlock()
	seen := map[string]int{}
	for _, m := range lines {
		if m["dir"] == "" {
			continue // the broker's own
		}
		seen[m["msg"]]++
		require.Equal(t, "a", m["topic"], "%v", m)
		require.Equal(t, strings.TrimPrefix(filepath.ToSlash(m["dir"]), "/d/a-"), m["partition"], "%v", m)
	}
	require.Equal(t, 4, seen["log created"]+seen["log opened"], "%v", seen) // two created, two reopened
	require.Positive(t, seen["rolled segment"], "%v", seen)
}

// TestFutureTimestampLoggedOnce: a segment whose records are
// stamped in the future keeps itself and the segments after it past
// retention.ms, as Kafka's does; the log says so at Warn once, not again
// at every maintenance round (every MaintenanceInterval, 30 s by
// default, for as long as the timestamp is ahead: a year, for a
// producer's clock off by one).
func TestFutureTimestampLoggedOnce(t *testing.T) {
	ctx := context.Background()
	var o levelLines
	b, err := Open(Config{FS: vfs.NewMem(), Dir: "/d", Logger: o.logger(), MaintenanceInterval: time.Hour,
		TopicDefaults: log.Config{SegmentBytes: 300, RetentionTime: time.Millisecond}})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	// A record stamped a year ahead, which TimestampAfterMax (an hour by
	// default) would refuse: the topic has none, as a topic had before it.
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1, Config: log.Config{TimestampAfterMax: -1}}))
	future := time.Now().Add(365 * 24 * time.Hour).UnixMilli()
	for i := range 10 {
		ts := time.Now().UnixMilli()
		if i == 0 {
			ts = future
		}
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: 0, Acks: api.AcksAll, Batches: batchAt(t, ts, fmt.Sprint("v", i))})
		require.NoError(t, err)
	}
	for range 10 {
		require.NoError(t, b.Maintain(ctx))
	}
	require.Equal(t, 1, o.count(slog.LevelWarn, "segment has a timestamp in the future: time retention keeps it and the segments after it until then"))
}
