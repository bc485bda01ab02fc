package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/compression"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// probe serves a GET of path (/healthz, /livez) with h, its request
// under ctx: its status and text.
func probe(ctx context.Context, h http.Handler, path string) (int, string) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequestWithContext(ctx, http.MethodGet, path, nil))
	return w.Code, w.Body.String()
}

// fenceOrders1 fences partition 1 of the orders topic: an event written
// to it whose fsync fails (failing set meanwhile, for the broker's FS
// to fail the partition's fsyncs). Written through the broker itself: a
// producer retries the storage error until its delivery timeout, and its
// error matched the broker's only if an attempt was answered within that
// timeout (1 s, which a loaded machine could miss).
func fenceOrders1(t *testing.T, b *runnel.Broker, failing *atomic.Bool) {
	t.Helper()
	var events record.Builder
	events.Append(time.Now().UnixMilli(), nil, []byte("{}"), nil)
	batch, err := events.AppendTo(nil, compression.None)
	require.NoError(t, err)
	failing.Store(true)
	_, err = b.Produce(context.Background(), &api.ProduceRequest{Topic: OrdersTopic, Partition: 1, Acks: api.AcksAll, Batches: batch})
	require.ErrorIs(t, err, log.ErrLogFenced)
	failing.Store(false)
}

// newMemService opens an in-memory broker and a Service on it, both
// closed by t's cleanups, the Service logging into the buffer returned.
func newMemService(t *testing.T) (*runnel.Broker, *Service, *syncBuffer) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	logged := new(syncBuffer)
	svc, err := NewService(t.Context(), b, slog.New(slog.NewTextHandler(logged, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Close()) })
	return b, svc, logged
}

// TestHealthzTellsAFencedPartition: /healthz answers 200 while every
// partition of the orders topic takes events. Once a failed fsync fenced
// one, it answers 503 naming that partition and its Kafka error, without
// the cause's text (a file's path); a broker that is closed fails it
// too. In a synctest bubble, each probe served by the handler itself:
// on the real clock a probe had to be answered within healthTimeout
// (1 s, DescribeTopic failing at once on a ctx that has ended), which a
// loaded machine need not do.
func TestHealthzTellsAFencedPartition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var failing atomic.Bool
		fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if failing.Load() && op == vfs.OpSync && filepath.ToSlash(filepath.Dir(name)) == "/d/orders-1" {
				return vfs.ErrInjected
			}
			return nil
		}))
		b, err := runnel.Open(runnel.Config{FS: fsys, Dir: "/d"})
		require.NoError(t, err)
		var logged syncBuffer
		svc, err := NewService(ctx, b, slog.New(slog.NewTextHandler(&logged, nil)))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, svc.Close()) })
		code, text := probe(ctx, svc.Handler(), "/healthz")
		require.Equal(t, http.StatusOK, code, text)
		require.Equal(t, "ok\n", text)
		require.Empty(t, logged.String())

		// An event written to partition 1 whose fsync fails: the partition's
		// log is fenced.
		fenceOrders1(t, b, &failing)

		for range 3 {
			code, text = probe(ctx, svc.Handler(), "/healthz")
			require.Equal(t, http.StatusServiceUnavailable, code, text)
			require.Equal(t, "partitions refusing events: orders-1 (KAFKA_STORAGE_ERROR)\n", text)
			require.False(t, strings.Contains(text, filepath.FromSlash("/d/")), "no internal text")
		}
		// The cause is logged, once while it lasts, not at every probe.
		lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
		require.Len(t, lines, 1, logged.String())
		require.Contains(t, lines[0], "level=ERROR")
		require.Contains(t, lines[0], "unhealthy: partitions refusing events: orders-1 (KAFKA_STORAGE_ERROR)")
		require.Contains(t, lines[0], "orders-1=")
		// The file's path, as the text handler quotes it (\d\orders-1\ on
		// Windows, each backslash doubled).
		file := strings.Trim(strconv.Quote(filepath.FromSlash("/d/orders-1/")), `"`)
		require.Contains(t, lines[0], file, "with the cause: the file")

		require.NoError(t, b.Close())
		code, text = probe(ctx, svc.Handler(), "/healthz")
		require.Equal(t, http.StatusServiceUnavailable, code, text)
		require.Equal(t, "the event log is closed\n", text)
		require.Contains(t, logged.String(), "unhealthy: the event log is closed")
		require.Contains(t, logged.String(), "broker is closed")
	})
}

// TestHealthzLogsOnlyChanges: /healthz logs what it finds wrong when it
// changes, and "healthy again" once it is gone; a healthy service logs
// nothing at its probes.
func TestHealthzLogsOnlyChanges(t *testing.T) {
	var logged syncBuffer
	s := &Service{logger: slog.New(slog.NewTextHandler(&logged, nil))}
	s.healthChanged("")
	require.Empty(t, logged.String(), "healthy from the start")
	s.healthChanged("a", "why", 1)
	s.healthChanged("a", "why", 2)
	s.healthChanged("b", "why", 3)
	s.healthChanged("")
	s.healthChanged("")
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
		got = append(got, l[strings.Index(l, "level="):])
	}
	require.Equal(t, []string{
		`level=ERROR msg="unhealthy: a" why=1`,
		`level=ERROR msg="unhealthy: b" why=3`,
		`level=INFO msg="healthy again"`,
	}, got)
}
