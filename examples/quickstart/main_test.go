package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestQuickstartInMemory(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-records", "5000", "-compression", "zstd"}, &out, io.Discard))
	s := out.String()
	require.Contains(t, s, `opened broker in memory: created topic "orders" with 3 partitions`)
	require.Contains(t, s, "produced 5000 records")
	require.Contains(t, s, "consumed 5000 records")
}

// TestQuickstartContinues: a second run on the same directory finds the
// topic and continues where the first stopped.
func TestQuickstartContinues(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-dir", dir, "-records", "3000", "-partitions", "3"}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), args, &out, io.Discard))
	require.Contains(t, out.String(), "created topic")
	first := offsets(t, out.String())
	out.Reset()
	require.NoError(t, run(context.Background(), args, &out, io.Discard))
	s := out.String()
	require.Contains(t, s, `topic "orders" is there from an earlier run`)
	require.Contains(t, s, "consumed 3000 records")
	second := offsets(t, s)
	// Keys map to the same partitions both times, so each partition doubles.
	for p, end := range first {
		require.Equal(t, 2*end, second[p], "partition %d", p)
		if end > 0 {
			require.Contains(t, s, "continues at offset")
		}
	}
}

// TestQuickstartReportsTopicSync: a second run reports the fsync policy
// the topic was created with, not its own -sync, which applies to a new
// topic only.
func TestQuickstartReportsTopicSync(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-dir", dir, "-records", "100", "-sync", "never"}, &out, io.Discard))
	require.Contains(t, out.String(), "sync never")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"-dir", dir, "-records", "100", "-sync", "always"}, &out, io.Discard))
	require.Contains(t, out.String(), "sync never")
	require.NotContains(t, out.String(), "sync always")
}

// offsets reads the "orders-P: offsets [S, E)" lines.
func offsets(t *testing.T, s string) map[int]int {
	m := map[int]int{}
	for _, line := range strings.Split(s, "\n") {
		var p, start, end int
		if _, err := fmt.Sscanf(line, "orders-%d: offsets [%d, %d)", &p, &start, &end); err == nil {
			m[p] = end
		}
	}
	require.Len(t, m, 3)
	return m
}

// TestQuickstartNothing: zero records is a run that produces and
// consumes nothing, and ends.
func TestQuickstartNothing(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-records", "0"}, &out, io.Discard))
	require.Contains(t, out.String(), "consumed 0 records")
}

func TestQuickstartBadFlags(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-compression", "brotli"}, &out, io.Discard)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "brotli"), err.Error())
	require.Error(t, run(context.Background(), []string{"-sync", "sometimes"}, &out, io.Discard))
	require.Error(t, run(context.Background(), []string{"-partitions", "0"}, &out, io.Discard))
	// A stray argument was ignored, and the run went on without it.
	err = run(context.Background(), []string{"-records", "10", "extra", "-dir", t.TempDir()}, &out, io.Discard)
	require.ErrorContains(t, err, `unexpected argument "extra"`)
	require.NotContains(t, out.String(), "opened broker")
}

// TestQuickstartHelp: -h prints the usage (on stderr) and is no failure
// (exit 0, as a flag.ExitOnError program's), and runs nothing.
func TestQuickstartHelp(t *testing.T) {
	var out, usage bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-h"}, &out, &usage))
	require.Contains(t, usage.String(), "Usage of quickstart")
	require.Contains(t, usage.String(), "-dir")
	require.NotContains(t, out.String(), "opened broker")
	require.Empty(t, out.String())
}

func TestQuickstartOnePartition(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-records", "10", "-partitions", "1"}, &out, io.Discard))
	require.Contains(t, out.String(), `created topic "orders" with 1 partition`+"\n")
}

// A run shorter than half a millisecond printed "in 0s" beside its rate.
func TestRoundTook(t *testing.T) {
	require.Equal(t, 412*time.Microsecond, roundTook(412*time.Microsecond+300))
	require.Equal(t, 3457*time.Microsecond, roundTook(3456789*time.Nanosecond))
	require.Equal(t, 123*time.Millisecond, roundTook(123456789*time.Nanosecond))
}

// -sync periodic is taken, and the topic made with it says so.
func TestQuickstartSyncPeriodic(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"-dir", t.TempDir(), "-records", "10", "-sync", "periodic"}, &out, io.Discard))
	require.Contains(t, out.String(), "sync periodic")
	require.Contains(t, out.String(), "consumed 10 records")
}
