package runnel

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestPastCountDirLineNamesTheDirectory: the Warn line of a partition
// directory past its topic's partition count that holds records (left as
// it is) gives dir= as its path under Config.Dir, as the other stray
// lines and every log's lines do (d15393c), not its bare name.
func TestPastCountDirLineNamesTheDirectory(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2}))
	_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "a", Partition: 1, Acks: api.AcksAll, Batches: batch(t, "v")})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	path := filepath.Join("/data", topicsDir, "a.json")
	rec, err := readMemFile(mem, path)
	require.NoError(t, err)
	require.Equal(t, 1, bytes.Count(rec, []byte(`"Partitions": 2`)), "%s", rec)
	writeMemFile(t, mem, path, bytes.Replace(rec, []byte(`"Partitions": 2`), []byte(`"Partitions": 1`), 1))
	var o levelLines
	b, err = Open(Config{Dir: "/data", FS: mem, Logger: o.logger()})
	require.NoError(t, err)
	defer func() { require.NoError(t, b.Close()) }()
	o.mu.Lock()
	defer o.mu.Unlock()
	var dirs []string
	for _, r := range o.lines {
		if strings.HasPrefix(r.Message, "a partition directory past its topic's partition count holds records") {
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "dir" {
					dirs = append(dirs, a.Value.String())
				}
				return true
			})
		}
	}
	require.Equal(t, []string{filepath.Join("/data", "a-1")}, dirs)
}
