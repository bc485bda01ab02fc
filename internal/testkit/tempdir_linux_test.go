package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReclaimShm: reclaimShm removes a directory of lockedTempDir's whose
// lock nobody holds (as a killed process leaves it), with what is in it,
// and nothing else: not a directory whose lock is held (a live test's,
// here this process's own), nor one named as FastTempDir named them
// before the lock (runnel-test-<n>, whose process may live), nor a name
// of another pattern, nor a file.
func TestReclaimShm(t *testing.T) {
	root := t.TempDir()
	held, lock, err := lockedTempDir(root)
	require.NoError(t, err)
	defer lock.Close()
	left, leftLock, err := lockedTempDir(root)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(left, "topic-0"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(left, "topic-0", "00000000000000000000.log"), make([]byte, 4096), 0o644))
	require.NoError(t, leftLock.Close()) // its process killed: the kernel lets the lock go
	require.True(t, isShmTempName(filepath.Base(left)), left)

	kept := []string{held}
	for _, name := range []string{"runnel-test-12345", "runnel-test--1", "runnel-test-12x-1", "runnel-test-1-", "other-1-1"} {
		dir := filepath.Join(root, name)
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.False(t, isShmTempName(name), name)
		kept = append(kept, dir)
	}
	file := filepath.Join(root, "runnel-test-1-1")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	kept = append(kept, file)

	reclaimShm(root)
	require.NoDirExists(t, left)
	for _, p := range kept {
		_, err := os.Stat(p)
		require.NoError(t, err, "%s was removed", p)
	}
}

// TestFastTempDirReclaimsKilled: a directory FastTempDir made on /dev/shm
// for a test process that was then killed (SIGKILL: no cleanup ran) is
// removed by the first FastTempDir of the next test process, where it
// held its memory until someone removed it by hand.
func TestFastTempDirReclaimsKilled(t *testing.T) {
	switch {
	case os.Getenv("RUNNEL_TESTKIT_SHM_KILLED") == "1":
		dir := FastTempDir(t)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "data"), make([]byte, 1<<20), 0o644))
		fmt.Printf("dir=%s\n", dir)
		require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGKILL))
		select {} // until the signal ends the process
	case os.Getenv("RUNNEL_TESTKIT_SHM_NEXT") == "1":
		fmt.Printf("dir=%s\n", FastTempDir(t))
		return
	}
	if free, ok := shmFree(shmDir); !ok || free < shmMinFree {
		t.Skipf("no /dev/shm with %d bytes free: FastTempDir takes t.TempDir()", shmMinFree)
	}
	dirOf := func(out string) string {
		t.Helper()
		m := regexp.MustCompile(`(?m)^dir=(.*)$`).FindStringSubmatch(out)
		require.NotNil(t, m, "the child printed no directory:\n%s", out)
		return m[1]
	}
	out, err := RunChild(t, t.Name(), "RUNNEL_TESTKIT_SHM_KILLED")
	require.Error(t, err, "the child was to be killed:\n%s", out)
	left := dirOf(out)
	t.Cleanup(func() { os.RemoveAll(left) }) // if the test fails
	require.Equal(t, shmDir, filepath.Dir(left))
	require.FileExists(t, filepath.Join(left, "data"), "the killed child left its directory")

	out, err = RunChild(t, t.Name(), "RUNNEL_TESTKIT_SHM_NEXT")
	require.NoError(t, err, out)
	require.NoDirExists(t, left, "the next process's FastTempDir did not reclaim the killed one's directory")
	require.NoDirExists(t, dirOf(out), "the next process's own directory, removed by its cleanup")
}
