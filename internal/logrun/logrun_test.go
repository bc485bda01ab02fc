package logrun

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNextRunOfOneKind(t *testing.T) {
	var r Run
	t0 := time.Unix(1000, 0)
	level, extra := r.Next(t0, "a", slog.LevelInfo)
	require.Equal(t, slog.LevelInfo, level, "the first, at the level given")
	require.Nil(t, extra)

	var warned []time.Duration
	for s := 1; s <= 100; s++ {
		level, extra = r.Next(t0.Add(time.Duration(s)*time.Second), "a", slog.LevelInfo)
		if level == slog.LevelWarn {
			require.Equal(t, []any{"failing", time.Duration(s) * time.Second, "failures", int64(s + 1)}, extra)
			warned = append(warned, time.Duration(s)*time.Second)
			continue
		}
		require.Equal(t, slog.LevelDebug, level)
		require.Nil(t, extra)
	}
	require.Equal(t, []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second}, warned, "every Every from the last Warn")
}

func TestNextOtherKindOrEndBeginsARun(t *testing.T) {
	var r Run
	t0 := time.Unix(1000, 0)
	r.Next(t0, 1, slog.LevelWarn)
	level, _ := r.Next(t0, 1, slog.LevelWarn)
	require.Equal(t, slog.LevelDebug, level)
	level, _ = r.Next(t0, 2, slog.LevelWarn)
	require.Equal(t, slog.LevelWarn, level, "another kind")
	level, _ = r.Next(t0.Add(time.Second), 2, slog.LevelInfo)
	require.Equal(t, slog.LevelDebug, level)

	r.End()
	level, _ = r.Next(t0.Add(2*time.Second), 2, slog.LevelInfo)
	require.Equal(t, slog.LevelInfo, level, "after End")
	level, extra := r.Next(t0.Add(40*time.Second), 2, slog.LevelInfo)
	require.Equal(t, slog.LevelWarn, level)
	require.Equal(t, []any{"failing", 38 * time.Second, "failures", int64(2)}, extra, "counted from End")

	// A nil key is a kind, as any other: a caller with one kind only.
	var n Run
	level, _ = n.Next(t0, nil, slog.LevelInfo)
	require.Equal(t, slog.LevelInfo, level)
	level, _ = n.Next(t0, nil, slog.LevelInfo)
	require.Equal(t, slog.LevelDebug, level)
}

func TestLogAddsTheRunsAttributes(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var r Run
	t0 := time.Unix(1000, 0)
	r.Log(l, t0, nil, slog.LevelInfo, "m", "k", 1)
	r.Log(l, t0.Add(time.Second), nil, slog.LevelInfo, "m", "k", 2)
	r.Log(l, t0.Add(30*time.Second), nil, slog.LevelInfo, "m", "k", 3)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	require.Contains(t, lines[0], "level=INFO msg=m k=1")
	require.NotContains(t, lines[0], "failing")
	require.Contains(t, lines[1], "level=DEBUG msg=m k=2")
	require.Contains(t, lines[2], "level=WARN msg=m k=3 failing=30s failures=3")
}
