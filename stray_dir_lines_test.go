package runnel

import (
	"context"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestStrayDirLinesNameTheDirectory: the lines of Open's removal of
// stray partition directories give dir= as the directory's path, as
// every log's lines do ("log opened", "log fenced": the partition's
// directory under Config.Dir), not its bare name, and the lines about
// the data directory name it: two brokers of one process, on two data
// directories, told apart, and an operator pointed at the files.
func TestStrayDirLinesNameTheDirectory(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.Close())
	dir := strayDir(t, mem)
	var mu sync.Mutex
	var lines []map[string]string
	b, err = Open(Config{Dir: "/data", FS: mem, Logger: slog.New(attrsHandler{mu: &mu, lines: &lines})})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	mu.Lock()
	defer mu.Unlock()
	var logDir, strayLine string
	for _, m := range lines {
		switch m["msg"] {
		case "log opened":
			logDir = m["dir"]
		case "removed a stray partition directory":
			strayLine = m["dir"]
		}
	}
	require.Equal(t, filepath.Join("/data", "t-0"), logDir, "%v", lines)
	require.Equal(t, dir, strayLine, "the stray's dir= is its path, as a log's is: %v", lines)
}

// TestStrayHoldingRecordsRemovedWithAWarning: Open removes the partition
// directories of a topic that no record names — a DeleteTopic that failed
// after it removed the record, as the delete asked — and says so at Info;
// one that held records is removed at Warn, naming the record it looked
// for, since a record lost by other means (removed by hand, a file system
// that lost it) loses its partitions' records there.
func TestStrayHoldingRecordsRemovedWithAWarning(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "full", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "empty", log.TopicConfig{Partitions: 1}))
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "full", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "v")})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	for _, name := range []string{"full", "empty"} {
		require.NoError(t, mem.Remove(filepath.Join("/data", topicsDir, name+".json")))
	}
	var o levelLines
	b, err = Open(Config{Dir: "/data", FS: mem, Logger: o.logger()})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	o.mu.Lock()
	got := map[string]string{}
	for _, r := range o.lines {
		if !strings.HasPrefix(r.Message, "removed a stray partition directory") {
			continue
		}
		attrs := map[string]string{}
		r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
		got[attrs["dir"]] = r.Level.String() + " " + r.Message + " " + attrs["record"]
	}
	o.mu.Unlock()
	require.Equal(t, map[string]string{
		filepath.Join("/data", "full-0"):  "WARN removed a stray partition directory that held records: no topic record names it " + filepath.Join("/data", topicsDir, "full.json"),
		filepath.Join("/data", "empty-0"): "INFO removed a stray partition directory ",
	}, got)
	for _, dir := range []string{"full-0", "empty-0"} {
		_, err := mem.Stat(filepath.Join("/data", dir))
		require.ErrorIs(t, err, fs.ErrNotExist, dir)
	}
}
