package runnel

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestTopicNamedWithALeadingDotSurvivesOpen: Kafka's rules allow a topic
// name that starts with a dot (only "." and ".." are refused), and
// CreateTopic takes one; a second Open finds it and its records as it
// finds every topic's. Before, Open skipped its record,
// <Dir>/topics/.orders.json, as a file an OS leaves (log.SystemFile: any
// name with a leading dot), then removed its partition directory,
// .orders-0, as a stray: the acknowledged records went without an error,
// in memory and on disk.
func TestTopicNamedWithALeadingDotSurvivesOpen(t *testing.T) {
	ctx := context.Background()
	for _, disk := range []bool{false, true} {
		for _, name := range []string{".orders", "._orders", "..orders", ".-_."} {
			t.Run(map[bool]string{false: "mem", true: "disk"}[disk]+"/"+name, func(t *testing.T) {
				mem := vfs.NewMem()
				cfg, fsys, root := Config{FS: mem}, vfs.FS(mem), "/runnel"
				if disk {
					root = t.TempDir()
					cfg, fsys = Config{Dir: root}, vfs.OS
				}
				b, err := Open(cfg)
				require.NoError(t, err)
				require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 2}))
				require.Equal(t, int64(0), produce(t, b, name, 1, "acknowledged").BaseOffset)
				require.NoError(t, b.Close())

				for range 2 { // and once more, after the Open that found it
					b, err = Open(cfg)
					require.NoError(t, err)
					require.Contains(t, b.Topics(), name)
					_, end, recs := readAll(t, b, api.TopicPartition{Topic: name, Partition: 1})
					require.Equal(t, int64(1), end)
					require.Equal(t, "acknowledged", recs[0].value)
					require.NoError(t, b.Close())
				}
				_, err = fsys.Stat(filepath.Join(root, name+"-1"))
				require.NoError(t, err)
			})
		}
	}
}

// TestOpenSkipsTheDotFilesOfOthersInTopics: in <Dir>/topics, Open still
// skips the files others leave there whose names start with a dot: an
// AppleDouble file of macOS (._orders.json beside orders.json, on a
// FAT or network volume) and an editor's lock (.#orders.json of Emacs,
// no topic's name), and a .DS_Store. A record of a dot-named topic that
// is neither, and does not parse, fails Open with ErrCorruptMetadata and
// removes nothing, as a damaged record of any topic does.
func TestOpenSkipsTheDotFilesOfOthersInTopics(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := Config{FS: mem}
	b, err := Open(cfg)
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "orders", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, ".audit", log.TopicConfig{Partitions: 1}))
	produce(t, b, "orders", 0, "o")
	produce(t, b, ".audit", 0, "a")
	require.NoError(t, b.Close())

	dir := filepath.Join("/runnel", topicsDir)
	put := func(name string, data []byte) {
		t.Helper()
		w, err := mem.Create(filepath.Join(dir, name))
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	appleDouble := append(append([]byte{}, appleDoubleMagic...), 0, 2, 0, 0, 'M', 'a', 'c', ' ', 'O', 'S', ' ', 'X')
	put("._orders.json", appleDouble)
	put("._.audit.json", appleDouble)
	put(".#orders.json", []byte("user@host.1234:1700000000"))
	put(".DS_Store", []byte{0, 0, 0, 1, 'B', 'u', 'd', '1'})

	b, err = Open(cfg)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"orders", ".audit"}, b.Topics())
	for _, name := range []string{"orders", ".audit"} {
		_, end, _ := readAll(t, b, api.TopicPartition{Topic: name, Partition: 0})
		require.Equal(t, int64(1), end, name)
	}
	require.NoError(t, b.Close())

	put(".audit.json", []byte("{\"name\": \".audit\", \"partitions\""))
	_, err = Open(cfg)
	require.ErrorIs(t, err, ErrCorruptMetadata)
	for _, p := range []string{"/runnel/.audit-0/00000000000000000000.log", "/runnel/orders-0/00000000000000000000.log"} {
		fi, err := mem.Stat(p)
		require.NoError(t, err, "a failed Open removes nothing")
		require.NotZero(t, fi.Size(), p)
	}
}
