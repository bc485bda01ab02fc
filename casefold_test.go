package runnel

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// foldFS is a case-insensitive, case-preserving file system, as macOS's
// APFS and Windows' NTFS are by default: a name finds the entry that
// equals it but for case, and a new entry keeps the case it was created
// with.
type foldFS struct{ *vfs.MemFS }

// resolve spells name as the entries it finds are spelled.
func (f foldFS) resolve(name string) string {
	parts := strings.Split(filepath.Clean(name), string(filepath.Separator))
	dir := string(filepath.Separator)
	for i, p := range parts {
		if p == "" {
			continue
		}
		if names, err := f.MemFS.List(dir); err == nil {
			for _, n := range names {
				if strings.EqualFold(n, p) {
					parts[i] = n
					break
				}
			}
		}
		dir = filepath.Join(dir, parts[i])
	}
	return filepath.Join(string(filepath.Separator), filepath.Join(parts...))
}

func (f foldFS) Create(name string) (vfs.File, error) { return f.MemFS.Create(f.resolve(name)) }
func (f foldFS) Open(name string) (vfs.File, error)   { return f.MemFS.Open(f.resolve(name)) }
func (f foldFS) Remove(name string) error             { return f.MemFS.Remove(f.resolve(name)) }
func (f foldFS) RemoveAll(name string) error          { return f.MemFS.RemoveAll(f.resolve(name)) }
func (f foldFS) Rename(oldname, newname string) error {
	return f.MemFS.Rename(f.resolve(oldname), f.resolve(newname))
}
func (f foldFS) MkdirAll(dir string, perm os.FileMode) error {
	return f.MemFS.MkdirAll(f.resolve(dir), perm)
}
func (f foldFS) List(dir string) ([]string, error)     { return f.MemFS.List(f.resolve(dir)) }
func (f foldFS) Stat(name string) (os.FileInfo, error) { return f.MemFS.Stat(f.resolve(name)) }
func (f foldFS) SyncDir(dir string) error              { return f.MemFS.SyncDir(f.resolve(dir)) }
func (f foldFS) Lock(name string) (io.Closer, error)   { return f.MemFS.Lock(f.resolve(name)) }

// TestTopicNamesThatDifferInCaseOnly: a topic named as an existing one but
// for case (or for case and '.' against '_') is refused, as Kafka refuses
// one that differs in '.' against '_' only: on a case-insensitive file
// system (macOS's and Windows' defaults) the two share their partition
// directories and their record. CreateTopic used to clear the existing
// topic's partition directories as strays, open a second log on them, and
// write its record over the existing topic's: after a restart the existing
// topic was gone, its records with it, or (as here) the broker refused to
// open, finding a record named for the other topic (ErrCorruptMetadata).
// Found by review.
func TestTopicNamesThatDifferInCaseOnly(t *testing.T) {
	ctx := context.Background()
	fsys := foldFS{vfs.NewMem()}
	cfg := Config{Dir: "/data", FS: fsys, AutoCreateTopics: true}
	b, err := Open(cfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "Orders.v1", log.TopicConfig{Partitions: 1}))
	produce(t, b, "Orders.v1", 0, "kept")

	for _, name := range []string{"orders.v1", "ORDERS.V1", "orders_v1", "Orders_V1"} {
		err := b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1})
		require.ErrorIs(t, err, ErrInvalidTopic, name)
		require.ErrorContains(t, err, "Orders.v1")
		_, err = b.Partitions(ctx, name) // auto-create
		require.ErrorIs(t, err, ErrInvalidTopic, name)
	}
	require.Equal(t, []string{"Orders.v1"}, b.Topics())
	require.NoError(t, b.CreateTopic(ctx, "orders.v2", log.TopicConfig{Partitions: 1}))

	require.NoError(t, b.Close())
	b, err = Open(cfg)
	require.NoError(t, err)
	require.Equal(t, []string{"Orders.v1", "orders.v2"}, b.Topics())
	resp := produce(t, b, "Orders.v1", 0, "after")
	require.EqualValues(t, 1, resp.BaseOffset, "the record produced before is there")
}
