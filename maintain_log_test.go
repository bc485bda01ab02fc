package runnel

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// captured is a slog.Handler that keeps the records it is given.
type captured struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (c *captured) Enabled(context.Context, slog.Level) bool { return true }
func (c *captured) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, r.Clone())
	return nil
}
func (c *captured) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *captured) WithGroup(string) slog.Handler      { return c }

// errs returns the err attributes of the records of level and message msg
// about partition topic-0, in order.
func (c *captured) errs(level slog.Level, msg, topic string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.recs {
		if r.Level != level || r.Message != msg {
			continue
		}
		var part, err string
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "topic":
				part = a.Value.String()
			case "err":
				err = a.Value.String()
			}
			return true
		})
		if part == topic {
			out = append(out, err)
		}
	}
	return out
}

// TestMaintenanceLogsAFailureOnce: the broker's maintenance logs a
// partition's failure as an error when it begins, not again every round
// while it lasts unchanged (at debug level only): a fenced partition
// (its fsync failed) fails every round until the broker opens again; a
// partition whose reopen after a config change keeps failing is logged
// again when the error changes, and once it reopens, nothing more.
func TestMaintenanceLogsAFailureOnce(t *testing.T) {
	ctx := context.Background()
	var syncFault atomic.Bool
	var listFault atomic.Pointer[error]
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		switch {
		case op == vfs.OpSync && strings.Contains(filepath.ToSlash(name), "/fenced-0/") && strings.HasSuffix(name, ".log") && syncFault.CompareAndSwap(true, false):
			return vfs.ErrInjected
		case op == vfs.OpList && strings.Contains(filepath.ToSlash(name), "/reopen-0"):
			if err := listFault.Load(); err != nil {
				return *err
			}
		}
		return nil
	}))
	h := &captured{}
	b := open(t, Config{Dir: "/data", FS: fsys, Logger: slog.New(h), MaintenanceInterval: time.Hour})
	for _, name := range []string{"fenced", "reopen", "healthy"} {
		require.NoError(t, b.CreateTopic(ctx, name, log.TopicConfig{Partitions: 1}))
		produce(t, b, name, 0, "a")
	}

	syncFault.Store(true)
	_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "fenced", Acks: api.AcksAll, Batches: batch(t, "b")})
	require.ErrorIs(t, err, log.ErrLogFenced)
	errA := errors.New("fault A")
	listFault.Store(&errA)
	require.ErrorIs(t, b.AlterTopicConfig(ctx, "reopen", log.Config{MaxMessageBytes: 1 << 19}), errA)

	var failing map[*log.Partition]string
	for range 3 {
		failing = b.maintainRound(failing, nil)
	}
	fenced := h.errs(slog.LevelError, "maintenance failed", "fenced")
	require.Len(t, fenced, 1, "the fenced partition is logged once: %q", fenced)
	require.Contains(t, fenced[0], "fenced")
	require.Len(t, h.errs(slog.LevelDebug, "maintenance still failing", "fenced"), 2)
	reopen := h.errs(slog.LevelError, "maintenance failed", "reopen")
	require.Len(t, reopen, 1, "%q", reopen)
	require.Contains(t, reopen[0], "fault A")

	errB := errors.New("fault B")
	listFault.Store(&errB)
	for range 2 {
		failing = b.maintainRound(failing, nil)
	}
	reopen = h.errs(slog.LevelError, "maintenance failed", "reopen")
	require.Len(t, reopen, 2, "logged again when its error changes: %q", reopen)
	require.Contains(t, reopen[1], "fault B")

	listFault.Store(nil)
	for range 2 {
		failing = b.maintainRound(failing, nil)
	}
	require.Len(t, h.errs(slog.LevelError, "maintenance failed", "reopen"), 2, "reopened: nothing more")
	require.Len(t, h.errs(slog.LevelInfo, "partition reopened", "reopen"), 1)
	require.Len(t, h.errs(slog.LevelError, "maintenance failed", "fenced"), 1, "still once")
	require.Empty(t, h.errs(slog.LevelError, "maintenance failed", "healthy"))
	require.Len(t, failing, 1, "only the fenced partition fails")
	produce(t, b, "reopen", 0, "after")
}

// logged reports whether h holds a record of level and message msg.
func (c *captured) logged(level slog.Level, msg string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs {
		if r.Level == level && r.Message == msg {
			return true
		}
	}
	return false
}
