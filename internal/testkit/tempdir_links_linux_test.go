package testkit

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestReclaimShmLinksAndFuture: reclaimShm neither follows a symbolic
// link out of root nor removes what one names. In an old-style
// runnel-test-<n> in which nothing has changed for shmOldAge, links (to a
// directory outside, to a file there changed a moment ago) count by
// their own times, not their targets': the directory goes, the links
// with it, and the targets stay. A link in root named runnel-test-<n> or
// runnel-test-<pid>-<n>, to an old directory outside, is no directory of
// FastTempDir's: it stays, and so does its target. A directory of either
// name whose times are in the future (a clock set back) has changed
// recently as far as reclaimShm can tell: it stays.
func TestReclaimShmLinksAndFuture(t *testing.T) {
	base := t.TempDir()
	root, outside := filepath.Join(base, "shm"), filepath.Join(base, "outside")
	require.NoError(t, os.Mkdir(root, 0o755))
	now := time.Now()
	// aged sets p's times, not a link's target's.
	aged := func(p string, age time.Duration) {
		t.Helper()
		ts := unix.NsecToTimespec(now.Add(-age).UnixNano())
		require.NoError(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW))
	}
	old := 2 * shmOldAge

	// Outside root: a directory with a file in it, old, and a file
	// changed a moment ago.
	target := filepath.Join(outside, "dir")
	require.NoError(t, os.MkdirAll(target, 0o755))
	targetFile := filepath.Join(target, "00000000000000000000.log")
	require.NoError(t, os.WriteFile(targetFile, []byte("keep"), 0o644))
	young := filepath.Join(outside, "young")
	require.NoError(t, os.WriteFile(young, []byte("keep"), 0o644))
	aged(targetFile, old)
	aged(target, old)

	// An old-style directory with links out, all of it old.
	linked := filepath.Join(root, "runnel-test-444")
	require.NoError(t, os.MkdirAll(filepath.Join(linked, "topic-0"), 0o755))
	require.NoError(t, os.Symlink(target, filepath.Join(linked, "topic-0", "dir")))
	require.NoError(t, os.Symlink(young, filepath.Join(linked, "young")))
	for _, p := range []string{filepath.Join(linked, "topic-0", "dir"), filepath.Join(linked, "young"), filepath.Join(linked, "topic-0"), linked} {
		aged(p, old)
	}

	// Links in root named as FastTempDir's directories, old, to target.
	var links []string
	for _, name := range []string{"runnel-test-555", "runnel-test-1-1"} {
		link := filepath.Join(root, name)
		require.NoError(t, os.Symlink(target, link))
		aged(link, old)
		links = append(links, link)
	}

	// Directories of both names, unlocked, whose times are in the future.
	var future []string
	for _, name := range []string{"runnel-test-666", "runnel-test-2-2"} {
		dir := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "topic-0"), 0o755))
		aged(filepath.Join(dir, "topic-0"), -time.Hour)
		aged(dir, -time.Hour)
		future = append(future, dir)
	}

	reclaimShm(root, now)
	_, err := os.Lstat(linked)
	require.ErrorIs(t, err, os.ErrNotExist, "an old-style directory whose links' targets changed, not they")
	for _, p := range append(append([]string{target, targetFile, young}, links...), future...) {
		_, err := os.Lstat(p)
		require.NoError(t, err, "%s was removed", p)
	}
	data, err := os.ReadFile(targetFile)
	require.NoError(t, err)
	require.Equal(t, "keep", string(data))
}
