package main

import (
	"bytes"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// -h prints the usage on standard error, as Go programs do (the flag
// package's default), and nothing on standard output: it went to
// standard output, with the usage after a bad flag, where a program's
// results go (into a file or a pipe, say).
func TestUsageGoesToStderr(t *testing.T) {
	stdout, stderr := testkit.RunMain(t, main, "-h")
	require.Empty(t, stdout)
	require.Contains(t, stderr, "sage")
}

// A flag that is wrong is reported on standard error, with the usage,
// not on standard output, where the log goes.
func TestBadFlagGoesToStderr(t *testing.T) {
	var out, stderr bytes.Buffer
	require.Error(t, run(t.Context(), []string{"-bogus"}, &out, &stderr, func(string) { t.Error("served") }))
	require.Empty(t, out.String())
	require.Contains(t, stderr.String(), "flag provided but not defined: -bogus")
	require.Contains(t, stderr.String(), "Usage of microservice")
}
