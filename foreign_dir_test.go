package runnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestForeignDirectoriesAreNotRemoved: a directory named like a partition
// (<topic>-<N>) that holds files a log never writes is not the broker's,
// whatever its name: Open does not take it for a stray partition, and a
// CreateTopic or CreatePartitions whose partition it would be does not
// clear it, but fails with log.ErrNotLogDir. A broker opened on a shared
// directory (-dir /tmp in the quickstart) removed /tmp/tmux-1000, say,
// and CreateTopic("release", 2) the user's release-1. A hidden directory
// (a user's .git) counts as such a file: a log makes no directory, and
// only the files an OS leaves (.DS_Store, ._x, .nfsXXXX) are ignored
// there; a '.' name counted as one whether file or directory, and notes-2
// holding only a .git went with everything in it.
func TestForeignDirectoriesAreNotRemoved(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	files := []string{"/data/tmux-1000/default", "/data/release-1/notes.txt", "/data/orders-2/00000000000000000000.log.bak",
		"/data/notes-2/.git/HEAD"}
	for _, f := range files {
		require.NoError(t, mem.MkdirAll(filepath.Dir(f), 0o755))
		w, err := mem.Create(f)
		require.NoError(t, err)
		_, err = w.Write([]byte("the user's"))
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	kept := func() {
		t.Helper()
		for _, f := range files {
			_, err := mem.Stat(f)
			require.NoError(t, err, "%s was removed", f)
		}
	}
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	kept()

	err = b.CreateTopic(ctx, "release", log.TopicConfig{Partitions: 2})
	require.ErrorIs(t, err, log.ErrNotLogDir)
	require.Contains(t, err.Error(), "notes.txt")
	require.Empty(t, b.Topics())
	err = b.CreateTopic(ctx, "notes", log.TopicConfig{Partitions: 3})
	require.ErrorIs(t, err, log.ErrNotLogDir)
	require.Contains(t, err.Error(), ".git")
	require.Empty(t, b.Topics())
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 2}))
	err = b.CreatePartitions(ctx, "orders", 3)
	require.ErrorIs(t, err, log.ErrNotLogDir)
	info, err := b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	require.Len(t, info.Partitions, 2)
	kept()
	require.NoError(t, b.Close())

	b, err = Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	defer b.Close()
	kept()
	require.Equal(t, []string{"orders"}, b.Topics())
}

// TestStrayLogWithEveryKindOfFileIsRemoved: a stray partition whose log
// has rolled, compacted, snapshotted its producers and closed cleanly
// holds only files isLogFile knows, and Open removes it.
func TestStrayLogWithEveryKindOfFileIsRemoved(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "c", log.TopicConfig{Partitions: 1, Config: log.Config{
		SegmentBytes: 200, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: -1}}))
	for i := range 30 {
		produce(t, b, "c", 0, fmt.Sprint(i%3))
	}
	require.NoError(t, b.Maintain(ctx))
	require.NoError(t, b.Close())
	names, err := mem.List("/data/c-0")
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, n := range names {
		require.True(t, log.IsLogFile(n), "a log wrote %q", n)
		kinds[filepath.Ext(n)] = true
	}
	for _, ext := range []string{".log", ".index", ".timeindex", ".snapshot"} {
		require.True(t, kinds[ext], "no %s file in %v", ext, names)
	}
	require.NoError(t, mem.Remove("/data/topics/c.json"))
	b, err = Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	defer b.Close()
	_, err = mem.Stat("/data/c-0")
	require.ErrorIs(t, err, fs.ErrNotExist, "the stray partition stays")
	for _, n := range []string{"x", "00000000000000000000.log.bak", "00000000000000000000", "0.log", "partition.metadata", "-checkpoint.tmp.tmp"} {
		require.False(t, log.IsLogFile(n), n)
	}
}

// The files an OS's file manager leaves in the directories it shows
// (macOS Finder's .DS_Store and ._ files, Windows Explorer's Thumbs.db)
// do not stop a broker from opening its partitions again, as Kafka ignores
// them; a stray partition that holds one is still removed.
func TestSystemFilesInPartitionDirs(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 2}))
	require.NoError(t, b.CreateTopic(ctx, "gone", log.TopicConfig{Partitions: 1}))
	produce(t, b, "orders", 1, "kept")
	require.NoError(t, b.Close())

	for _, f := range []string{"/data/orders-0/.DS_Store", "/data/orders-1/._00000000000000000000.log", "/data/orders-1/Thumbs.db", "/data/gone-0/.DS_Store",
		"/data/.DS_Store", "/data/topics/.DS_Store", "/data/topics/._orders.json"} {
		w, err := mem.Create(f)
		require.NoError(t, err)
		if filepath.Base(f) == "._orders.json" {
			// An AppleDouble file begins with its magic number; in
			// <Dir>/topics Open tells it by that from the record of a
			// topic named "._orders" (TestOpenSkipsTheDotFilesOfOthersInTopics).
			_, err = w.Write(appleDoubleMagic)
			require.NoError(t, err)
		}
		require.NoError(t, w.Close())
	}
	// gone's topic record goes, as if the broker had crashed in the
	// middle of DeleteTopic: its partition is a stray.
	require.NoError(t, mem.Remove(filepath.Join("/data", topicsDir, "gone.json")))

	b, err = Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err, "Finder's or Explorer's files in partition directories")
	defer b.Close()
	info, err := b.DescribeTopic(ctx, "orders")
	require.NoError(t, err)
	require.EqualValues(t, 1, info.Partitions[1].HighWatermark)
	_, err = mem.Stat("/data/gone-0")
	require.ErrorIs(t, err, fs.ErrNotExist, "a stray partition with a .DS_Store is removed")
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

// TestStrayRemovedDirSyncFails: Open removes a stray partition
// directory (of no topic) and syncs the data directory; a failed sync is
// logged as a warning, and the broker opens all the same (the cleanup is
// best effort, as removeStrays' doc says).
func TestStrayRemovedDirSyncFails(t *testing.T) {
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
				return errInjectedFault // once the stray is removed
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

// TestStrayStatFailsKept: a stray partition directory whose files
// cannot be looked at (Stat fails, other than for a missing file) is
// left as it is, with a warning: it may hold records (holdsRecords
// cannot tell), and keepStray renames a directory, as removeLogDir
// removes one, only once it knows it holds nothing but a log's files.
// The broker opens.
func TestStrayStatFailsKept(t *testing.T) {
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	dir := strayDir(t, mem)
	faulty := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpStat && filepath.Dir(name) == dir {
			return errInjectedFault
		}
		return nil
	}))
	h := &captured{}
	b, err = Open(Config{Dir: "/data", FS: faulty, Logger: slog.New(h)})
	require.NoError(t, err)
	defer b.Close()
	_, err = mem.Stat(filepath.Join(dir, "00000000000000000000.log"))
	require.NoError(t, err, "the stray is kept")
	require.True(t, h.logged(slog.LevelWarn, "keeping a stray partition directory that holds records: left as it is"), "the failure is logged")
}

// TestPartitionPastADamagedCountKeepsItsRecords: a topic record whose
// partition count went down (one flipped bit: "Partitions": 2 read as
// 1, still valid JSON) does not cost the partitions past it their
// records: no CreatePartitions leaves a directory past the count that
// holds records, so Open leaves such a directory as it is, with a
// warning, where it removed it as a stray; the record mended, the next
// Open finds the partition and its records again. An empty one past the
// count (a CreatePartitions that failed before its record) still goes;
// one whose records retention removed (its segment starts past 0, its
// offsets go on from there) stays, and keeps its offsets.
func TestPartitionPastADamagedCountKeepsItsRecords(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 4, Config: log.Config{RetentionTime: time.Hour}}))
	produce(t, b, "a", 1, "kept")
	for range 5 {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: 2, Acks: api.AcksAll,
			Batches: batchAt(t, time.Now().Add(-2*time.Hour).UnixMilli(), "old")})
		require.NoError(t, err)
	}
	require.NoError(t, b.Maintain(ctx))
	emptied, err := b.ListOffset(ctx, "a", 2, api.Earliest)
	require.NoError(t, err)
	require.Equal(t, int64(5), emptied.Offset, "retention removed a-2's records")
	require.NoError(t, b.Close())

	path := "/data/topics/a.json"
	good, err := readMemFile(mem, path)
	require.NoError(t, err)
	i := bytes.Index(good, []byte(`"Partitions": 4`))
	require.GreaterOrEqual(t, i, 0, "%s", good)
	damaged := bytes.Clone(good)
	damaged[i+len(`"Partitions": `)] ^= 0x05 // '4' reads '1'
	writeMemFile(t, mem, path, damaged)

	h := &captured{}
	b, err = Open(Config{Dir: "/data", FS: mem, Logger: slog.New(h)})
	require.NoError(t, err)
	ti, err := b.DescribeTopic(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, 1, ti.Config.Partitions, "the record as it reads")
	_, err = mem.Stat("/data/a-1")
	require.NoError(t, err, "a-1 holds records: left as it is")
	_, err = mem.Stat("/data/a-2")
	require.NoError(t, err, "a-2 held records, which retention removed: left as it is")
	_, err = mem.Stat("/data/a-3")
	require.ErrorIs(t, err, fs.ErrNotExist, "a-3 held none: removed as a stray")
	require.True(t, h.logged(slog.LevelWarn, "a partition directory past its topic's partition count holds records: left as it is (the topic's record damaged, or an earlier topic's of the name?)"))
	require.NoError(t, b.Close())

	mended := bytes.Clone(good)
	mended[i+len(`"Partitions": `)] = '3'
	writeMemFile(t, mem, path, mended)
	b, err = Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	defer b.Close()
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "a", Partition: 1}}})
	require.NoError(t, err)
	require.NoError(t, resp.Partitions[0].Err)
	require.Equal(t, []string{"kept"}, values(t, resp.Partitions[0].Records))
	for _, at := range []int64{api.Earliest, api.Latest} {
		lo, err := b.ListOffset(ctx, "a", 2, at)
		require.NoError(t, err)
		require.Equal(t, int64(5), lo.Offset, "a-2's offsets go on where retention left them")
	}
}
