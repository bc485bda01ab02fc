package main

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
)

// mainChildEnv holds the arguments (newline-separated) with which
// TestMainExitsNonZero's child runs main.
const mainChildEnv = "RUNNEL_TEST_UNITTEST_ARGS"

// A run that fails exits with status 1 and says why on standard error,
// prefixed with the program's name; no mail goes to standard output.
// main runs in a process of its own (the test binary, running this test
// with mainChildEnv set), as os.Exit would end the test's.
func TestMainExitsNonZero(t *testing.T) {
	if testkit.ChildMain(mainChildEnv, "unittest", main) {
		return
	}
	for _, tc := range []struct{ name, args, want string }{
		{"bad flag", "-bogus", "flag provided but not defined"},
		{"no address", "", "unittest: no address given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := testkit.MainExit(t, "TestMainExitsNonZero", mainChildEnv, tc.args)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, "unittest: ")
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stdout, "mail to")
		})
	}
}

// A run whose ctx has ended registers no one, mails no one, and fails
// with ctx's error.
func TestRunCtxEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"ada@example.com"}, &out, io.Discard)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, out.String())
}

// A run none of whose addresses can be registered has done nothing it
// was asked: it fails (exit status 1), as one given no address does,
// rather than exit 0 as if the users had been welcomed.
func TestRunNoAddressRegistered(t *testing.T) {
	var out, stderr bytes.Buffer
	err := run(t.Context(), []string{"nope", "ada@"}, &out, &stderr)
	require.Error(t, err)
	require.Empty(t, out.String())
	require.Contains(t, stderr.String(), `not registered: unittest: bad email address: "nope"`)
	require.Contains(t, stderr.String(), `not registered: unittest: bad email address: "ada@"`)
}
