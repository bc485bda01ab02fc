package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
)

// Several brokers in one process share the packages' state: the
// compression codecs' pools and shared zstd coders, the pools of the log
// and segment layers, the process's table of locked directories
// (vfs.OS's Lock) and its memory of logs whose sync-failed checkpoint
// could not be written (log's failedLogs). These tests run brokers side
// by side, as parallel tests with runneltest.NewBroker do, and check
// that none sees or disturbs another's records, topics, lines or
// directory (under -race, that they share nothing unguarded).

// TestBrokersSideBySide: brokers in memory (each on its own MemFS, the
// default) and on disk, run at once, each with a producer of another
// codec, a compacted topic, its own Logger and runneltest.Faults, read
// back their own records only, and their Loggers get their own lines
// only (every dir= and file= under their Dir).
func TestBrokersSideBySide(t *testing.T) {
	codecs := []compression.Codec{compression.None, compression.Gzip, compression.Snappy, compression.LZ4, compression.Zstd}
	for i := range 6 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var (
				mu    sync.Mutex
				paths []string
			)
			cfg := runnel.Config{Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
				mu.Lock()
				defer mu.Unlock()
				r.Attrs(func(a slog.Attr) bool {
					if a.Key == "dir" || a.Key == "file" {
						paths = append(paths, a.Value.String())
					}
					return true
				})
			})), TopicDefaults: log.Config{SegmentBytes: 512, RetentionTime: -1}}
			root := "/runnel" // the in-memory default's
			if i%2 == 1 {
				cfg.Dir = t.TempDir()
				root = cfg.Dir
			}
			b := runneltest.NewBroker(t, runneltest.Config(cfg), runneltest.Topic("t", 2),
				runneltest.TopicConfig("c", log.TopicConfig{Partitions: 2, Config: log.Config{CleanupPolicy: log.Compact}}))
			f := runneltest.NewFaults(t, b)
			p := runneltest.NewProducer(t, f, producer.Compression(codecs[i%len(codecs)]))
			mine := fmt.Sprintf("broker%d-", i)
			var want []string
			for _, topic := range []string{"t", "c"} {
				var recs []*record.Record
				for n := range 100 {
					v := fmt.Sprintf("%s%d-%s", mine, n, strings.Repeat("x", n))
					recs = append(recs, &record.Record{Topic: topic, Key: []byte(fmt.Sprint(n)), Value: []byte(v)})
					if topic == "t" {
						want = append(want, v)
					}
				}
				require.NoError(t, p.ProduceSync(ctx, recs...))
			}
			require.NoError(t, b.Maintain(ctx))
			for _, topic := range []string{"t", "c"} {
				var got []string
				for _, r := range runneltest.ConsumeAll(t, f, topic) {
					got = append(got, string(r.Value))
				}
				require.ElementsMatch(t, want, got, "%s: the broker's own records, all of them", topic)
			}
			require.Equal(t, []string{"c", "t"}, b.Topics())
			require.NoError(t, p.Close())
			require.NoError(t, b.Close())
			mu.Lock()
			defer mu.Unlock()
			require.NotEmpty(t, paths)
			for _, path := range paths {
				require.True(t, strings.HasPrefix(filepath.ToSlash(path), filepath.ToSlash(root)+"/"), "a line of %s not under %s", path, root)
			}
		})
	}
}

// TestSecondOpenOfADirectoryByAnyName: of Opens of one directory at
// once, one opens it and the others fail with vfs.ErrLocked; so does an
// Open by another name of it (relative, through a symbolic link, with a
// trailing separator or a "..", on a wrapper of the same MemFS), until
// the broker closes. Brokers in memory by default have a MemFS each:
// they share no topic.
func TestSecondOpenOfADirectoryByAnyName(t *testing.T) {
	dir := t.TempDir()
	opened := make(chan *runnel.Broker, 8)
	var wg sync.WaitGroup
	for range cap(opened) {
		wg.Go(func() {
			b, err := runnel.Open(runnel.Config{Dir: dir})
			if err != nil {
				if !errors.Is(err, vfs.ErrLocked) {
					t.Errorf("not vfs.ErrLocked: %v", err)
				}
				return
			}
			opened <- b
		})
	}
	wg.Wait()
	close(opened)
	require.Len(t, opened, 1, "one Open of them all")
	b := <-opened

	// Relative to a working directory beside it: the temporary
	// directory may be on another volume than the package's (Windows,
	// Wine), where no relative name reaches it.
	t.Chdir(filepath.Dir(dir))
	names := []string{filepath.Base(dir), dir + string(filepath.Separator), filepath.Join(dir, "topics") + string(filepath.Separator) + ".."}
	link := filepath.Join(t.TempDir(), "link")
	err := os.Symlink(dir, link)
	if err == nil {
		_, err = os.Lstat(link) // Wine 8's CreateSymbolicLinkW reports success, makes nothing
	}
	if err != nil {
		// No symbolic links: Windows without the privilege, exFAT.
		t.Logf("no symbolic link to the directory: %v", err)
		link = dir
	} else {
		names = append(names, link)
	}
	for _, name := range names {
		_, err := runnel.Open(runnel.Config{Dir: name})
		require.ErrorIs(t, err, vfs.ErrLocked, "%s", name)
	}
	require.NoError(t, b.Close())
	b, err = runnel.Open(runnel.Config{Dir: link})
	require.NoError(t, err, "free once closed")
	require.NoError(t, b.Close())

	mem := vfs.NewMem()
	b, err = runnel.Open(runnel.Config{FS: mem})
	require.NoError(t, err)
	for _, c := range []runnel.Config{{FS: mem}, {FS: mem, Dir: "/runnel/"}, {FS: vfs.WithFaults(mem, vfs.Count()), Dir: "runnel"}} {
		_, err := runnel.Open(c)
		require.ErrorIs(t, err, vfs.ErrLocked, "%q", c.Dir)
	}
	require.NoError(t, b.Close())

	ctx := context.Background()
	x, y := runneltest.NewBroker(t), runneltest.NewBroker(t)
	runneltest.CreateTopic(t, x, "t", log.TopicConfig{Partitions: 1})
	require.Empty(t, y.Topics())
	require.NoError(t, y.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	runneltest.ProduceValues(t, x, "t", "x")
	runneltest.ProduceValues(t, y, "t", "y1", "y2")
	require.NoError(t, x.Close())
	require.Len(t, runneltest.ConsumeAll(t, y, "t"), 2)
}
