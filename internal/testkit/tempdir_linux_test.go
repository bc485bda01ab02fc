package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestReclaimShm: reclaimShm removes a directory of lockedTempDir's whose
// lock nobody holds (as a killed process leaves it) and that has not
// changed for shmYoung, with what is in it; and a runnel-test-<n>, named
// as FastTempDir named them before the lock, in which nothing has changed
// for shmOldAge; and nothing else: not a directory whose lock is held (a
// live test's, here this process's own), nor an unlocked one younger
// than shmYoung (made a moment ago, about to be locked), nor a
// runnel-test-<n> in which a file changed less than shmOldAge ago (whose
// process may live, with no lock to tell), nor a name of another
// pattern, nor a file.
func TestReclaimShm(t *testing.T) {
	root := t.TempDir()
	now := time.Now()
	aged := func(p string, age time.Duration) {
		t.Helper()
		require.NoError(t, os.Chtimes(p, now.Add(-age), now.Add(-age)))
	}
	held, lock, err := lockedTempDir(root)
	require.NoError(t, err)
	defer lock.Close()
	aged(held, time.Hour)
	locked := func(age time.Duration) string {
		t.Helper()
		dir, lock, err := lockedTempDir(root)
		require.NoError(t, err)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "topic-0"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "topic-0", "00000000000000000000.log"), make([]byte, 4096), 0o644))
		require.NoError(t, lock.Close()) // its process killed: the kernel lets the lock go
		require.True(t, isShmTempName(filepath.Base(dir)), dir)
		aged(dir, age)
		return dir
	}
	left := locked(shmYoung + time.Second)
	young := locked(shmYoung - 10*time.Second)
	old := func(name string, age, fileAge time.Duration) string {
		t.Helper()
		dir := filepath.Join(root, name)
		require.NoError(t, os.MkdirAll(filepath.Join(dir, "topic-0"), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "topic-0", "00000000000000000000.log"), nil, 0o644))
		require.True(t, isOldShmTempName(name), name)
		aged(filepath.Join(dir, "topic-0", "00000000000000000000.log"), fileAge)
		aged(filepath.Join(dir, "topic-0"), age)
		aged(dir, age)
		return dir
	}
	oldLeft := old("runnel-test-111", shmOldAge+time.Minute, shmOldAge+time.Minute)
	oldLive := old("runnel-test-222", shmOldAge+time.Minute, shmOldAge-time.Minute)

	kept := []string{held, young, oldLive}
	for _, name := range []string{"runnel-test-12345", "runnel-test--1", "runnel-test-12x-1", "runnel-test-1-", "runnel-test-", "other-1-1"} {
		dir := filepath.Join(root, name)
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.False(t, isShmTempName(name), name)
		if name != "runnel-test-12345" { // old-style, but changed a moment ago: kept
			require.False(t, isOldShmTempName(name), name)
			aged(dir, 2*shmOldAge) // kept however old
		}
		kept = append(kept, dir)
	}
	file := filepath.Join(root, "runnel-test-1-1")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	aged(file, 2*shmOldAge)
	kept = append(kept, file)

	reclaimShm(root, now)
	require.NoDirExists(t, left)
	require.NoDirExists(t, oldLeft)
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
	// As if shmYoung had passed since it was killed (the next process's
	// reclaim leaves it alone until then).
	long := time.Now().Add(-shmYoung - time.Second)
	require.NoError(t, os.Chtimes(left, long, long))

	out, err = RunChild(t, t.Name(), "RUNNEL_TESTKIT_SHM_NEXT")
	require.NoError(t, err, out)
	require.NoDirExists(t, left, "the next process's FastTempDir did not reclaim the killed one's directory")
	require.NoDirExists(t, dirOf(out), "the next process's own directory, removed by its cleanup")
}
