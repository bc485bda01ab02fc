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

// A flag that is wrong, and an address that cannot be registered, are
// reported on standard error; the mails alone go to standard output.
func TestErrorsGoToStderr(t *testing.T) {
	var out, stderr bytes.Buffer
	require.Error(t, run(t.Context(), []string{"-bogus"}, &out, &stderr))
	require.Empty(t, out.String())
	require.Contains(t, stderr.String(), "flag provided but not defined: -bogus")
	require.Contains(t, stderr.String(), "usage: unittest EMAIL...")

	out.Reset()
	stderr.Reset()
	require.NoError(t, run(t.Context(), []string{"nope", "ada@example.com"}, &out, &stderr))
	require.Equal(t, "mail to ada@example.com: Welcome!\n", out.String())
	require.Contains(t, stderr.String(), `not registered: unittest: bad email address: "nope"`)
}
