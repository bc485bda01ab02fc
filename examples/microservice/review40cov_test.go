package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

// A run that fails exits with status 1 and says why on standard error,
// prefixed with the program's name. main runs in a process of its own
// (the test binary, running this test with mainChildEnv set), as os.Exit
// would end the test's.
func TestReview40MainExitsNonZero(t *testing.T) {
	if testkit.ChildMain(mainChildEnv, "microservice", main) {
		return
	}
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, tc := range []struct{ name, args, want string }{
		{"bad flag", "-bogus", "flag provided but not defined: -bogus"},
		{"dir is a file", "-addr\n127.0.0.1:0\n-dir\n" + file, "microservice: "},
		{"bad addr", "-addr\n127.0.0.1:-1", "microservice: listen tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := testkit.MainExit(t, "TestReview40MainExitsNonZero", mainChildEnv, tc.args)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stdout, "msg=serving")
		})
	}
}

// A -dir that cannot be a directory (a file is there) fails the run with
// the broker's error (not the quiet stop of a signal), serving nothing.
func TestReview40RunDirIsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("not a broker"), 0o600))
	var out bytes.Buffer
	err := run(t.Context(), []string{"-addr", "127.0.0.1:0", "-dir", file}, &out, io.Discard, func(string) { t.Error("served") })
	require.Error(t, err)
	require.NotContains(t, out.String(), "stopped while")
}

// An -addr that cannot be listened on fails the run with the listener's
// error, and the broker and the service are still closed: every
// partition's log is closed cleanly, and no goroutine is left (TestMain's
// goleak).
func TestReview40RunCannotListen(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(t.Context(), []string{"-addr", "127.0.0.1:-1", "-dir", dir}, &out, io.Discard, func(string) { t.Error("served") })
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
	require.Equal(t, "listen", opErr.Op)
	for p := range 4 {
		_, err := os.Stat(filepath.Join(dir, OrdersTopic+"-"+strconv.Itoa(p), "clean-shutdown"))
		require.NoError(t, err, "partition %d not closed cleanly", p)
	}
}

// A shutdown whose requests are still under way when -shutdown-timeout
// ends (here one whose body never comes) fails the run saying so, with
// the timeout's error, and still closes the broker cleanly.
func TestReview40RunShutdownTimesOut(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	addr, stop := startRun(ctx, t, io.Discard, "-dir", dir, "-shutdown-timeout", "1ns")

	// As in TestSecondSignalExitsAtOnce: a handler reading a body that
	// never comes holds the shutdown up.
	stuck := stuckRequest(t, addr)
	defer stuck.Close()

	err := stop()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "shutdown: requests still under way after 1ns")
	require.NoError(t, stuck.Close()) // the handler's read ends: no goroutine left
	for p := range 4 {
		_, err := os.Stat(filepath.Join(dir, OrdersTopic+"-"+strconv.Itoa(p), "clean-shutdown"))
		require.NoError(t, err, "partition %d not closed cleanly", p)
	}
}

// NewService on a closed broker returns the broker's error, and no
// service (nor goroutine: TestMain's goleak).
func TestReview40NewServiceBrokerClosed(t *testing.T) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	require.NoError(t, b.Close())
	svc, err := NewService(t.Context(), b, slog.New(slog.DiscardHandler))
	require.ErrorIs(t, err, runnel.ErrClosed)
	require.Nil(t, svc)
}

// cancelOnLog is a slog.Handler that calls cancel at the first record
// whose message is msg.
type cancelOnLog struct {
	slog.Handler
	msg    string
	cancel context.CancelFunc
}

func (cancelOnLog) Enabled(context.Context, slog.Level) bool { return true }

func (h cancelOnLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.cancel()
	}
	return nil
}

// A handler that cannot read the topic (a corrupt batch on disk, which
// the consumer reports and retries for ever) never catches up: NewService
// waits for it until ctx ends, then returns ctx's error, its handlers
// stopped (TestMain's goleak), and the broker still closes cleanly.
func TestReview40NewServiceCtxEndsBeforeHandlersCatchUp(t *testing.T) {
	dir := t.TempDir()
	b, err := runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(t.Context(), OrdersTopic, log.TopicConfig{Partitions: 4}))
	value := "an order whose bytes go bad on disk"
	runneltest.Produce(t, b, OrdersTopic, &record.Record{Partition: 0, Value: []byte(value)})
	require.NoError(t, b.Close())
	logs, err := filepath.Glob(filepath.Join(dir, OrdersTopic+"-0", "*.log"))
	require.NoError(t, err)
	require.Len(t, logs, 1)
	data, err := os.ReadFile(logs[0])
	require.NoError(t, err)
	i := bytes.Index(data, []byte(value))
	require.GreaterOrEqual(t, i, 0, "the value is stored as it was produced")
	data[i] ^= 0xff
	require.NoError(t, os.WriteFile(logs[0], data, 0o600))

	b, err = runnel.Open(runnel.Config{Dir: dir})
	require.NoError(t, err)
	defer b.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	svc, err := NewService(ctx, b, slog.New(cancelOnLog{msg: "consume", cancel: cancel}))
	require.ErrorIs(t, err, context.Canceled, "ctx ended by the handler's report, not by the test's timeout")
	require.Nil(t, svc)
	require.NoError(t, b.Close())
}
