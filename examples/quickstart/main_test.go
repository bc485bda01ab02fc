package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuickstartInMemory(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-records", "5000", "-compression", "zstd"}, &out))
	s := out.String()
	require.Contains(t, s, "opened orders-0 in memory: new")
	require.Contains(t, s, "appended 5000 records")
	require.Contains(t, s, "read back 5000 records")
}

// TestQuickstartContinues: a second run on the same directory continues
// where the first stopped.
func TestQuickstartContinues(t *testing.T) {
	dir := t.TempDir()
	args := []string{"-dir", dir, "-records", "3000", "-partitions", "3", "-batch", "500"}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), args, &out))
	require.Contains(t, out.String(), "orders-0: offsets [0, 1000)")
	out.Reset()
	require.NoError(t, run(context.Background(), args, &out))
	s := out.String()
	require.Contains(t, s, "opened orders-0 in "+dir+": continuing at offset 1000")
	require.Contains(t, s, "read back 3000 records")
	require.Contains(t, s, "orders-2: offsets [0, 2000)")
}

func TestQuickstartBadFlags(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-compression", "brotli"}, &out)
	require.Error(t, err)
	require.True(t, strings.Contains(err.Error(), "brotli"), err.Error())
	require.Error(t, run(context.Background(), []string{"-sync", "sometimes"}, &out))
	require.Error(t, run(context.Background(), []string{"-partitions", "0"}, &out))
}
