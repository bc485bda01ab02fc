package runnel

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
)

// lockChildEnv names the directory the child process of
// TestLockAcrossProcesses opens its broker on.
const lockChildEnv = "RUNNEL_TEST_LOCK_CHILD_DIR"

// TestLockAcrossProcesses: while a process has a broker open on a
// directory, Open in another process fails with vfs.ErrLocked; once that
// process is killed (SIGKILL: no Close, no clean shutdown), the lock
// goes with it, and Open succeeds and finds the records it acknowledged.
func TestLockAcrossProcesses(t *testing.T) {
	if dir := os.Getenv(lockChildEnv); dir != "" {
		lockChild(t, dir)
		return
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	dir := t.TempDir()
	cmd := exec.Command(exe, "-test.run=^TestLockAcrossProcesses$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the child waits on it: killed, not ended
	require.NoError(t, err)
	defer stdin.Close()
	err = cmd.Start()
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, err)
	killed := false
	defer func() {
		if !killed {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err, "the child's first line: %q", line)
	require.Equal(t, "ready\n", line)

	_, err = Open(Config{Dir: dir})
	require.ErrorIs(t, err, vfs.ErrLocked, "a second process on the directory")

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait() // "signal: killed"
	killed = true

	b := open(t, Config{Dir: dir})
	resp, err := b.Fetch(context.Background(), &api.FetchRequest{Partitions: []api.FetchPartition{{Topic: "t", Partition: 0}}})
	require.NoError(t, err)
	require.NoError(t, resp.Partitions[0].Err)
	require.Equal(t, []string{"0", "1", "2"}, values(t, resp.Partitions[0].Records))
}

// lockChild is TestLockAcrossProcesses's child: it opens a broker on dir,
// produces three records, says "ready" and waits to be killed.
func lockChild(t *testing.T, dir string) {
	fail := func(err error) {
		fmt.Println("child:", err)
		os.Exit(2)
	}
	b, err := Open(Config{Dir: dir})
	if err != nil {
		fail(err)
	}
	ctx := context.Background()
	if err := b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}); err != nil {
		fail(err)
	}
	for i := range 3 {
		if _, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, fmt.Sprint(i))}); err != nil {
			fail(err)
		}
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n') // until killed
	os.Exit(3)
}
