package main

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestLivezTellsWhatOnlyARestartMends: /livez, the liveness probe, fails
// for a fenced partition (a failed fsync: it takes no event until the
// broker is opened again) and for a closed broker, where /healthz, the
// readiness probe, fails for those and also while the broker does not
// answer (a config change holds a partition, its reopen stuck on the
// disk), which a restart would not mend: /livez answers 200 then, naming
// the problem. The two probes log a problem once between them. In a
// synctest bubble, so that the probe's timeout (healthTimeout) passes
// at once while the config change is stuck.
func TestLivezTellsWhatOnlyARestartMends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		var failSync, holdSync atomic.Bool
		held, release := make(chan struct{}), make(chan struct{})
		fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
			if op != vfs.OpSync {
				return nil
			}
			switch filepath.ToSlash(filepath.Dir(name)) {
			case "/d/orders-1":
				if failSync.Load() {
					return vfs.ErrInjected
				}
			case "/d/orders-2":
				if holdSync.CompareAndSwap(true, false) {
					close(held)
					<-release
				}
			}
			return nil
		}))
		b, err := runnel.Open(runnel.Config{FS: fsys, Dir: "/d"})
		require.NoError(t, err)
		var logged syncBuffer
		svc, err := NewService(ctx, b, slog.New(slog.NewTextHandler(&logged, nil)))
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, svc.Close()) })
		h := svc.Handler()
		code, text := probe(ctx, h, "/livez")
		require.Equal(t, http.StatusOK, code, text)
		require.Equal(t, "ok\n", text)

		// Not answering: a config change holds orders-2, its reopen's fsync
		// stuck. Not ready; alive.
		holdSync.Store(true)
		altered := make(chan error, 1)
		go func() {
			altered <- b.AlterTopicConfig(ctx, OrdersTopic, log.Config{RetentionTime: -1, SegmentBytes: 1 << 20})
		}()
		<-held
		code, text = probe(ctx, h, "/healthz")
		require.Equal(t, http.StatusServiceUnavailable, code, text)
		require.Equal(t, "the event log does not answer\n", text)
		code, text = probe(ctx, h, "/livez")
		require.Equal(t, http.StatusOK, code, text)
		require.Equal(t, "ok (not ready: the event log does not answer)\n", text)
		close(release)
		require.NoError(t, <-altered)
		code, text = probe(ctx, h, "/livez")
		require.Equal(t, http.StatusOK, code, text)
		require.Equal(t, "ok\n", text)

		// Fenced: an event written to orders-1 whose fsync fails (through
		// the broker itself, as in TestHealthzTellsAFencedPartition).
		fenceOrders1(t, b, &failSync)
		for range 2 {
			code, text = probe(ctx, h, "/livez")
			require.Equal(t, http.StatusServiceUnavailable, code, text)
			require.Equal(t, "partitions fenced, until a restart: orders-1\n", text)
			code, text = probe(ctx, h, "/healthz")
			require.Equal(t, http.StatusServiceUnavailable, code, text)
			require.Equal(t, "partitions refusing events: orders-1 (KAFKA_STORAGE_ERROR)\n", text)
		}

		require.NoError(t, b.Close())
		code, text = probe(ctx, h, "/livez")
		require.Equal(t, http.StatusServiceUnavailable, code, text)
		require.Equal(t, "the event log is closed\n", text)

		// The probes' lines (the handlers log their own when the broker
		// closes under them).
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(logged.String()), "\n") {
			i := strings.Index(l, `msg="`)
			if i < 0 || !strings.Contains(l, "healthy") {
				continue
			}
			msg := l[i+len(`msg="`):]
			got = append(got, `msg="`+msg[:strings.Index(msg, `"`)+1])
		}
		require.Equal(t, []string{
			`msg="unhealthy: the event log does not answer"`,
			`msg="healthy again"`,
			`msg="unhealthy: partitions refusing events: orders-1 (KAFKA_STORAGE_ERROR)"`,
			`msg="unhealthy: the event log is closed"`,
		}, got, "once each, whichever probe found it")
	})
}
