package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A run that fails exits with status 1 and says why on standard error,
// prefixed with the program's name. main runs in a process of its own
// (the test binary, running this test with mainChildEnv set), as os.Exit
// would end the test's.
func TestMainExitsNonZero(t *testing.T) {
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
			code, stdout, stderr := testkit.MainExit(t, "TestMainExitsNonZero", mainChildEnv, tc.args)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stdout, "msg=serving")
		})
	}
}

// A -dir that cannot be a directory (a file is there) fails the run with
// the broker's error (not the quiet stop of a signal), serving nothing.
func TestRunDirIsAFile(t *testing.T) {
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
func TestRunCannotListen(t *testing.T) {
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

// NewService on a closed broker returns the broker's error, and no
// service (nor goroutine: TestMain's goleak).
func TestNewServiceBrokerClosed(t *testing.T) {
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
func TestNewServiceCtxEndsBeforeHandlersCatchUp(t *testing.T) {
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

// A topic whose records were all deleted (DeleteRecords, or the 7-day
// retention of a topic made before it kept its records for ever) has
// nothing for the handlers to read up to: NewService starts at once
// rather than wait, with no record to come, until ctx ends.
func TestNewServiceStartsOnATopicWhoseRecordsAreGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
		v, err := json.Marshal(Order{ID: "order-k1", Customer: "ada", Items: []string{"book"}, AmountCents: 1299})
		require.NoError(t, err)
		r := &record.Record{Key: []byte("ada"), Value: v}
		runneltest.Produce(t, b, OrdersTopic, r)
		_, err = b.DeleteRecords(t.Context(), OrdersTopic, r.Partition, r.Offset+1)
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		svc, err := NewService(ctx, b, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NoError(t, svc.Close())
	})
}

// A broker Close that fails at shutdown (here the partitions'
// directories are gone, so the logs cannot be closed cleanly) fails the
// run, so that the service exits 1 and says why: the error was dropped,
// and a shutdown that left the logs to recover exited 0.
func TestCloseErrorFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := startRun(ctx, t, io.Discard, "-dir", dir)
	url := "http://" + addr
	resp, st := post(t, url, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	waitDone(ctx, t, url, st.Order.ID)
	for p := range 4 {
		path := filepath.Join(dir, OrdersTopic+"-"+strconv.Itoa(p))
		if err := os.RemoveAll(path); err != nil { // Windows: its files are open
			_ = stop()
			t.Skip("the partition's directory cannot be removed while its files are open:", err)
		}
	}
	require.ErrorContains(t, stop(), "close broker")
}
