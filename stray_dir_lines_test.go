package runnel

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

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
