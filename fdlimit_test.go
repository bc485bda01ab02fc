//go:build linux

package runnel_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/runneltest"
)

// fdLimitChildEnv marks the child process of TestFileDescriptorLimit.
const fdLimitChildEnv = "RUNNEL_TEST_FDLIMIT_CHILD"

// TestFileDescriptorLimit runs a broker on disk into the process's limit
// of open files (RLIMIT_NOFILE, lowered in a child process: the test
// binary re-executed, so that the limit never touches the other tests)
// and checks that each call that needs a descriptor fails with the file
// system's error (matching syscall.EMFILE), loses nothing acknowledged and
// leaves nothing half made, and that the broker works again once
// descriptors are free:
//
//   - CreateTopic: fails, creates nothing (the topic is not listed), and
//     creates the topic once the limit is raised;
//   - an append that rolls the active segment: fails with
//     log.ErrRollFailed (retriable, KAFKA_STORAGE_ERROR), without fencing
//     the partition, and the appends after the limit is raised succeed
//     (the old code fenced the partition until the broker was opened
//     again: log.ErrLogFenced for every later append);
//   - Open: fails, closes what it opened and releases the directory's
//     lock, and the Open after the limit is raised finds every record
//     acknowledged.
func TestFileDescriptorLimit(t *testing.T) {
	if os.Getenv(fdLimitChildEnv) != "" {
		fdLimitChild(t)
		return
	}
	skipWithoutProcFD(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestFileDescriptorLimit$", "-test.v")
	cmd.Env = append(os.Environ(), fdLimitChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, err, "the child failed:\n%s", out)
	t.Logf("child:\n%s", out)
}

func fdLimitChild(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old))
	setLimit := func(n uint64) {
		l := old
		l.Cur = min(n, old.Max)
		require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l))
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old)

	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer func() { b.Close() }()
	cfg := log.TopicConfig{Partitions: 4, Config: log.Config{SegmentBytes: 1 << 10}}
	setLimit(uint64(openFiles(t) + 40)) // room for 3 topics of 4 partitions, 3 descriptors each
	var created []string
	var createErr error
	for i := 0; createErr == nil; i++ {
		name := fmt.Sprint("t", i)
		if createErr = b.CreateTopic(ctx, name, cfg); createErr == nil {
			created = append(created, name)
		}
		require.Less(t, i, 100, "the limit of open files is never reached")
	}
	t.Logf("CreateTopic at the limit, after %d topics: %v", len(created), createErr)
	require.ErrorIs(t, createErr, syscall.EMFILE)
	require.NotEmpty(t, created)
	require.Equal(t, created, b.Topics(), "the topic that failed is not there")
	failed := fmt.Sprint("t", len(created))
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range names {
		require.False(t, strings.HasPrefix(e.Name(), failed+"-"), "the failed topic's partition directory %s is left", e.Name())
	}

	// Appends to one partition until a roll needs descriptors there are
	// not.
	val := make([]byte, 100)
	acked := 0
	var rollErr error
	for ; rollErr == nil; acked++ {
		_, rollErr = b.Produce(ctx, &api.ProduceRequest{Topic: created[0], Acks: api.AcksAll, Batches: leakBatch(t, "", val)})
		require.Less(t, acked, 1000, "no roll failed")
	}
	acked-- // the last one failed
	t.Logf("append at the limit, after %d: %v", acked, rollErr)
	require.ErrorIs(t, rollErr, syscall.EMFILE)
	require.ErrorIs(t, rollErr, log.ErrRollFailed)
	require.NotErrorIs(t, rollErr, log.ErrLogFenced, "a roll that wrote nothing fences nothing")
	require.True(t, api.IsRetriable(rollErr))

	setLimit(old.Cur)
	for range 20 { // rolls again
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: created[0], Acks: api.AcksAll, Batches: leakBatch(t, "", val)})
		require.NoError(t, err, "the partition works again once descriptors are free")
		acked++
	}
	require.NoError(t, b.CreateTopic(ctx, failed, cfg), "the topic that failed can be created")
	require.NoError(t, b.Maintain(ctx))
	require.NoError(t, b.Close())

	// Open at the limit.
	before := openFiles(t)
	setLimit(uint64(before + 10))
	_, err = runnel.Open(runnel.Config{Dir: dir})
	t.Logf("Open at the limit: %v", err)
	require.ErrorIs(t, err, syscall.EMFILE)
	require.Equal(t, before, openFiles(t), "a failed Open closes what it opened")
	setLimit(old.Cur)
	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err, "the lock was released")
	require.Equal(t, append(created, failed), b.Topics())
	d, err := b.DescribeTopic(ctx, created[0])
	require.NoError(t, err)
	require.Equal(t, int64(acked), d.Partitions[0].HighWatermark, "every acknowledged record is there")
	n := 0
	for _, r := range runneltest.ConsumeAll(t, b, created[0]) {
		if r.Partition == 0 {
			n++
		}
	}
	require.Equal(t, acked, n)
}
