package runnel

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// Tests of session 40's coverage pass: each drives a statement of the
// root package that no test ran, and checks what it must do.

var errReview40 = errors.New("review40: injected fault")

// logged reports whether h holds a record of level and message msg.
func (c *captured) logged(level slog.Level, msg string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if r.Level == level && r.Message == msg {
			return true
		}
	}
	return false
}

// TestReview40TimestampAtRecordGone: ListOffset's timestampAt answers -1
// (no timestamp), not an error, for an offset that no record has any
// more — DeleteRecords passed it since the look-up by time found it — and
// for an offset with nothing below the bound to read; and a record's own
// timestamp otherwise.
func TestReview40TimestampAtRecordGone(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a", "b")
	produce(t, b, "t", 0, "c")
	_, p, err := b.topicPartition(ctx, "t", 0, false)
	require.NoError(t, err)
	ts, err := timestampAt(ctx, p, 2, 3)
	require.NoError(t, err)
	require.Positive(t, ts, "the timestamp of a record there")

	low, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, low)
	for _, off := range []int64{0, 1} {
		ts, err := timestampAt(ctx, p, off, 3)
		require.NoError(t, err, "offset %d, below the log start", off)
		require.EqualValues(t, -1, ts, "offset %d, below the log start", off)
	}
	ts, err = timestampAt(ctx, p, 3, 3)
	require.NoError(t, err, "the log end")
	require.EqualValues(t, -1, ts, "the log end")
}

// TestReview40OldRecordIDWriteFailsOpen: Open gives a topic recorded
// before topic IDs its ID and writes it to the record; when that write
// fails (the file system refuses the temporary file), Open fails with
// the file system's error, leaving the record as it was and the data
// there, and the directory unlocked: the next Open, with the fault gone,
// gives the ID and serves the records.
func TestReview40OldRecordIDWriteFailsOpen(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	path := oldTopicRecord(t, mem)

	faulty := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && filepath.Base(name) == metaTmp {
			return errReview40
		}
		return nil
	}))
	_, err := Open(Config{Dir: "/data", FS: faulty})
	require.ErrorIs(t, err, errReview40)
	m, err := (&Broker{fs: mem}).readMeta(path)
	require.NoError(t, err)
	require.True(t, m.ID.IsZero(), "the record is left as it was")

	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err, "the failed Open left the directory locked")
	defer b.Close()
	info, err := b.DescribeTopic(ctx, "a")
	require.NoError(t, err)
	require.False(t, info.ID.IsZero())
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "a", MaxBytes: 1 << 20}}})
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, values(t, resp.Partitions[0].Records))
}

// strayDir makes /data/gone-0, a partition directory of no topic, holding
// an empty segment file, and returns its path.
func strayDir(t *testing.T, mem vfs.FS) string {
	t.Helper()
	dir := filepath.Join("/data", "gone-0")
	require.NoError(t, mem.MkdirAll(dir, 0o755))
	f, err := mem.Create(filepath.Join(dir, "00000000000000000000.log"))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return dir
}

// TestReview40StrayRemovedDirSyncFails: Open removes a stray partition
// directory (of no topic) and syncs the data directory; a failed sync is
// logged as a warning, and the broker opens all the same (the cleanup is
// best effort, as removeStrays' doc says).
func TestReview40StrayRemovedDirSyncFails(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.Close())
	dir := strayDir(t, mem)
	faulty := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpSyncDir && filepath.Clean(name) == filepath.Clean("/data") {
			if _, err := mem.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				return errReview40 // once the stray is removed
			}
		}
		return nil
	}))
	h := &captured{}
	b, err = Open(Config{Dir: "/data", FS: faulty, Logger: slog.New(h)})
	require.NoError(t, err)
	defer b.Close()
	_, err = mem.Stat(dir)
	require.ErrorIs(t, err, fs.ErrNotExist, "the stray is removed")
	require.True(t, h.logged(slog.LevelWarn, "syncing the data directory"), "the failed sync is logged")
	produce(t, b, "t", 0, "a")
}

// TestReview40StrayStatFailsKept: a stray partition directory whose files
// cannot be looked at (Stat fails, other than for a missing file) is
// left as it is, with a warning: removeLogDir removes a directory only
// once it knows it holds nothing but a log's files. The broker opens.
func TestReview40StrayStatFailsKept(t *testing.T) {
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	dir := strayDir(t, mem)
	faulty := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpStat && filepath.Dir(name) == dir {
			return errReview40
		}
		return nil
	}))
	h := &captured{}
	b, err = Open(Config{Dir: "/data", FS: faulty, Logger: slog.New(h)})
	require.NoError(t, err)
	defer b.Close()
	_, err = mem.Stat(filepath.Join(dir, "00000000000000000000.log"))
	require.NoError(t, err, "the stray is kept")
	require.True(t, h.logged(slog.LevelWarn, "removing a stray partition directory"), "the failure is logged")
}

// TestReview40OldRecordBadEnumIsCorrupt: a record of version 0 whose Sync
// or TimestampType is past the values version 0 had (0..2, 0..1) is
// corrupt: Open fails with ErrCorruptMetadata naming the file, rather than
// shift it into another setting.
func TestReview40OldRecordBadEnumIsCorrupt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
	}{
		{"Sync", map[string]any{"Partitions": 1, "Sync": 3}},
		{"TimestampType", map[string]any{"Partitions": 1, "TimestampType": 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			b, err := Open(Config{Dir: "/data", FS: mem})
			require.NoError(t, err)
			require.NoError(t, b.Close())
			writeTopicRecord(t, mem, map[string]any{"name": "a", "config": tc.config})
			_, err = Open(Config{Dir: "/data", FS: mem})
			require.ErrorIs(t, err, ErrCorruptMetadata)
			require.Contains(t, err.Error(), "a.json")
		})
	}
}

// TestReview40MaintainCtxEndsWaitingForReopenedLog: Maintain that finds
// the log it maintains closed by a config change (which reopened the
// partition) looks the new log up; when that look-up waits (the
// partition's lock is held: a DeleteTopic or another change under way)
// and ctx ends, Maintain returns ctx's error, and gives the maintenance
// token back: the next Maintain runs.
func TestReview40MaintainCtxEndsWaitingForReopenedLog(t *testing.T) {
	bg := context.Background()
	b := open(t, Config{MaintenanceInterval: time.Hour})
	require.NoError(t, b.CreateTopic(bg, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	_, p, err := b.topicPartition(bg, "t", 0, false)
	require.NoError(t, err)
	var (
		alterErr, lockErr error
		k                 *log.PartitionLock
	)
	testHookMaintainLog = func() {
		testHookMaintainLog = nil
		alterErr = b.UpdateTopicConfig(bg, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 })
		k, lockErr = p.Lock(bg)
	}
	defer func() { testHookMaintainLog = nil }()
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- b.Maintain(ctx) }()
	waitForStack(t, "runnel.(*Broker).maintainPartition(", "log.(*Partition).LogContext(")
	cancel()
	var merr error
	select {
	case merr = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Maintain did not end with its ctx")
	}
	require.NoError(t, alterErr)
	require.NoError(t, lockErr)
	k.Unlock()
	require.ErrorIs(t, merr, context.Canceled)
	require.NoError(t, b.Maintain(bg), "the maintenance token was given back")
	produce(t, b, "t", 0, "b")
}

// endingCtx is a context that ends (context.Canceled) at the n-th call
// of its Err, as a ctx that ends while the callee works does, between two
// of its looks at it.
type endingCtx struct {
	context.Context
	mu    sync.Mutex
	n     int
	ended chan struct{}
}

func newEndingCtx(n int) *endingCtx {
	return &endingCtx{Context: context.Background(), n: n, ended: make(chan struct{})}
}

func (c *endingCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n--; c.n == 0 {
		close(c.ended)
	}
	if c.n <= 0 {
		return context.Canceled
	}
	return nil
}

func (c *endingCtx) Done() <-chan struct{} { return c.ended }

// TestReview40DescribeTopicCtxEndsBetweenPartitions: a DescribeTopic whose
// ctx ends while it looks the partitions up returns ctx's error, never a
// TopicInfo with some of the partitions only. (The ctx ends at its third
// look, after the first partition's, as the code stands.)
func TestReview40DescribeTopicCtxEndsBetweenPartitions(t *testing.T) {
	bg := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(bg, "t", log.TopicConfig{Partitions: 3}))
	for n := 1; n <= 8; n++ {
		info, err := b.DescribeTopic(newEndingCtx(n), "t")
		if err != nil {
			require.ErrorIs(t, err, context.Canceled, "ended at look %d", n)
			require.Zero(t, info, "ended at look %d", n)
			continue
		}
		require.Len(t, info.Partitions, 3, "ended at look %d", n)
	}
}
