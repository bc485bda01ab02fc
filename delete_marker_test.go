package runnel

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// DeleteTopic's crash points (TestDeleteTopicEveryCrashPoint): the
// deletion renames the topic's record to its marker (<name>.del)
// and syncs the topics directory, removes the partitions' directories,
// syncs the data directory and removes the marker. After a power cut, or
// a failed operation the disk carries on past, at any of those points the
// next Open finds the topic whole or gone: gone, with no directory of it,
// no marker and no -stray directory left, and a CreateTopic of the name
// starts empty.

const dmRoot = "/dm"

func dmConfig(fsys vfs.FS, l *slog.Logger) Config {
	return Config{Dir: dmRoot, FS: fsys, MaintenanceInterval: time.Hour, Logger: l}
}

// dmValues are the records of partition p of topic.
func dmValues(topic string, p int) []string {
	return []string{fmt.Sprintf("%s-%d a", topic, p), fmt.Sprintf("%s-%d b", topic, p)}
}

// runDeleteScenario creates "d" (three partitions) and "keep" (one),
// appends to each partition, deletes "d" and closes the broker. It returns
// the number of file-system operations fsys counted before and after the
// delete, and DeleteTopic's error.
func runDeleteScenario(t *testing.T, fsys vfs.FS, count func() int) (before, after int, deleteErr error) {
	t.Helper()
	ctx := context.Background()
	b, err := Open(dmConfig(fsys, nil))
	require.NoError(t, err)
	defer b.Close()
	for topic, n := range map[string]int{"d": 3, "keep": 1} {
		require.NoError(t, b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: n}))
		for p := range n {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: topic, Partition: int32(p), Acks: api.AcksAll, Batches: batchAt(t, 1_700_000_000_000, dmValues(topic, p)...)})
			require.NoError(t, err)
		}
	}
	before = count()
	deleteErr = b.DeleteTopic(ctx, "d")
	after = count()
	return before, after, deleteErr
}

// checkDeleteOutcome opens the broker on fsys and checks that "d" is
// whole (unless its deletion was acknowledged) or gone without a trace,
// and that "keep" is whole; then that "d" can be created again, empty.
func checkDeleteOutcome(t *testing.T, fsys vfs.FS, acked bool, what string) {
	t.Helper()
	ctx := context.Background()
	var o levelLines
	b, err := Open(dmConfig(fsys, o.logger()))
	require.NoError(t, err, what)
	check := func(topic string, n int) {
		info, err := b.DescribeTopic(ctx, topic)
		require.NoError(t, err, what)
		require.Len(t, info.Partitions, n, what)
		for p := range n {
			_, vals := readPartition(t, b, topic, int32(p))
			require.Equal(t, dmValues(topic, p), vals, "%s: %s-%d", what, topic, p)
		}
	}
	check("keep", 1)
	if slices.Contains(b.Topics(), "d") {
		require.False(t, acked, "%s: d came back after its DeleteTopic returned", what)
		check("d", 3)
	} else {
		dmNoneLeft(t, fsys, what+": left of the deleted topic", func(n string) bool { return strings.HasPrefix(n, "d-") })
	}
	o.mu.Lock()
	for _, r := range o.lines {
		require.False(t, r.Level >= slog.LevelWarn && strings.Contains(r.Message, "stray"), "%s: %s", what, r.Message)
	}
	o.mu.Unlock()
	if !slices.Contains(b.Topics(), "d") {
		require.NoError(t, b.CreateTopic(ctx, "d", log.TopicConfig{Partitions: 2}), what)
		info, err := b.DescribeTopic(ctx, "d")
		require.NoError(t, err)
		for _, p := range info.Partitions {
			require.Zero(t, p.LogEndOffset, "%s: d-%d starts empty", what, p.Partition)
		}
	}
	require.NoError(t, b.Close(), what)
	// Nothing left to clean at the next Open either.
	dmNoneLeft(t, fsys, what, func(n string) bool { return strings.HasSuffix(n, straySuffix) })
}

// dmNoneLeft checks that no entry of the data directory is one left
// reports, and that "d" has no deletion marker.
func dmNoneLeft(t *testing.T, fsys vfs.FS, what string, left func(name string) bool) {
	t.Helper()
	names, err := fsys.List(dmRoot)
	require.NoError(t, err)
	for _, n := range names {
		require.False(t, left(n), "%s: %s", what, n)
	}
	names, err = fsys.List(filepath.Join(dmRoot, topicsDir))
	require.NoError(t, err)
	require.NotContains(t, names, "d"+deletedSuffix, what)
}

// TestDeleteTopicEveryCrashPoint: see above. Each of DeleteTopic's
// file-system operations is failed (and every one after it, a disk that
// died) and the run crashed, dropping what was not synced, and with the
// unsynced directory operations persisting in part (CrashOptions.Reorder);
// and each is failed alone, the disk carrying on, the broker reopened
// without a crash.
func TestDeleteTopicEveryCrashPoint(t *testing.T) {
	c := vfs.Count()
	before, after, err := runDeleteScenario(t, vfs.WithFaults(vfs.NewMem(), c), c.N)
	require.NoError(t, err)
	require.Greater(t, after, before)
	t.Logf("DeleteTopic: operations %d to %d", before+1, after)
	for k := before + 1; k <= after+1; k++ {
		mem := vfs.NewMem()
		c := vfs.FailFrom(k)
		_, _, err := runDeleteScenario(t, vfs.WithFaults(mem, c), c.N)
		opts := []vfs.CrashOptions{{Tail: vfs.TailDrop}}
		for seed := range uint64(4) {
			opts = append(opts, vfs.CrashOptions{Tail: vfs.TailDrop, Reorder: true, Rand: rand.New(rand.NewPCG(seed, uint64(k)))})
		}
		for i, o := range opts {
			checkDeleteOutcome(t, mem.CrashClone(o), err == nil, fmt.Sprintf("crash at operation %d (%v), crash %d", k, err, i))
		}

		mem = vfs.NewMem()
		c = vfs.FailNth(k)
		_, _, err = runDeleteScenario(t, vfs.WithFaults(mem, c), c.N)
		checkDeleteOutcome(t, mem, err == nil, fmt.Sprintf("operation %d failed (%v)", k, err))
	}
}

// TestDeleteTopicLeavesNoMarker: a DeleteTopic that succeeds leaves no
// marker, nor a directory of the topic.
func TestDeleteTopicLeavesNoMarker(t *testing.T) {
	mem := vfs.NewMem()
	_, _, err := runDeleteScenario(t, mem, func() int { return 0 })
	require.NoError(t, err)
	_, err = mem.Stat(filepath.Join(dmRoot, topicsDir, "d"+deletedSuffix))
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = mem.Stat(filepath.Join(dmRoot, topicsDir, "d.json"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	checkDeleteOutcome(t, mem, true, "clean")
}

// TestOlderRunnelsDeleteCutShortKept: the directory of an older runnel
// (testdata/compat, each version's, on the operating system's file
// system) whose DeleteTopic a crash cut short after its record's removal
// was durable — the record gone, no marker (older runnels wrote none),
// the partitions' directories still holding records — opens with those
// directories kept, renamed -stray, where this runnel's older versions
// removed them as the delete asked: the conservative direction, since
// nothing tells such a directory from one whose record was lost. The
// other topics open as they were.
func TestOlderRunnelsDeleteCutShortKept(t *testing.T) {
	srcs, err := filepath.Glob(filepath.Join("testdata", "compat", "*-clean"))
	require.NoError(t, err)
	require.NotEmpty(t, srcs)
	for _, src := range srcs {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.CopyFS(dir, os.DirFS(filepath.Join(src, "data"))))
			require.NoError(t, os.Remove(filepath.Join(dir, topicsDir, "plain.json")))
			var o levelLines
			b, err := Open(Config{Dir: dir, MaintenanceInterval: time.Hour, Clock: fixedClock{time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, Logger: o.logger()})
			require.NoError(t, err)
			topics := b.Topics()
			require.NoError(t, b.Close())
			require.NotContains(t, topics, "plain")
			require.NotEmpty(t, topics)
			names, err := os.ReadDir(dir)
			require.NoError(t, err)
			var strays []string
			for _, n := range names {
				if strings.HasSuffix(n.Name(), straySuffix) {
					strays = append(strays, n.Name())
				}
				require.False(t, strings.HasPrefix(n.Name(), "plain-") && !strings.HasSuffix(n.Name(), straySuffix), n.Name())
			}
			require.Len(t, strays, 2, "plain-0 and plain-1 kept: %v", strays)
			for _, s := range strays {
				src := filepath.Join(src, "data", s[:strings.IndexByte(s, '.')])
				want, err := os.ReadDir(src)
				require.NoError(t, err)
				got, err := os.ReadDir(filepath.Join(dir, s))
				require.NoError(t, err)
				require.Equal(t, len(want), len(got), "%s: every file of %s kept", s, src)
			}
			o.mu.Lock()
			n := 0
			for _, r := range o.lines {
				if strings.HasPrefix(r.Message, "kept a stray partition directory") {
					n++
				}
			}
			o.mu.Unlock()
			require.Equal(t, 2, n)
		})
	}
}

// TestCreateTopicRemovesALeftMarker: a DeleteTopic whose removal of its
// marker fails answers nil (the topic is gone, durably) with a Warn line;
// a CreateTopic of the name on the same broker removes the marker before
// it writes the topic's record, so that no marker outlives the record
// written after it (should that record be lost, the marker would have
// the next Open remove the new topic's directories).
func TestCreateTopicRemovesALeftMarker(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	marker := filepath.Join(dmRoot, topicsDir, "d"+deletedSuffix)
	failing := true
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if failing && op == vfs.OpRemove && filepath.Clean(name) == filepath.Clean(marker) {
			return vfs.ErrInjected
		}
		return nil
	}))
	var o levelLines
	b, err := Open(dmConfig(fsys, o.logger()))
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "d", log.TopicConfig{Partitions: 1}))
	produce(t, b, "d", 0, "old")
	require.NoError(t, b.DeleteTopic(ctx, "d"))
	require.Equal(t, 1, o.count(slog.LevelWarn, "removing a deleted topic's marker: the next Open removes it"))
	_, err = mem.Stat(marker)
	require.NoError(t, err, "the marker is left")
	failing = false
	require.NoError(t, b.CreateTopic(ctx, "d", log.TopicConfig{Partitions: 1}))
	_, err = mem.Stat(marker)
	require.ErrorIs(t, err, fs.ErrNotExist, "CreateTopic removed the marker")
	produce(t, b, "d", 0, "new")
	require.NoError(t, b.Close())
	// The record lost now, the new topic's partition is kept, not taken
	// for the deleted topic's.
	require.NoError(t, mem.Remove(filepath.Join(dmRoot, topicsDir, "d.json")))
	b, err = Open(dmConfig(mem, nil))
	require.NoError(t, err)
	require.NoError(t, b.Close())
	names, err := mem.List(dmRoot)
	require.NoError(t, err)
	kept := 0
	for _, n := range names {
		if strings.HasPrefix(n, "d-0.") && strings.HasSuffix(n, straySuffix) {
			kept++
		}
	}
	require.Equal(t, 1, kept, "%v", names)
}
