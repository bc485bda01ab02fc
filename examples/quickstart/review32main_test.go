package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// runMain runs main with args, its standard output and standard error
// going to files of their own, and returns what each got. main must
// return (an error would exit the test binary).
func runMain(t *testing.T, args ...string) (stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outPath, errPath := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	outF, err := os.Create(outPath)
	require.NoError(t, err)
	defer outF.Close()
	errF, err := os.Create(errPath)
	require.NoError(t, err)
	defer errF.Close()
	oldArgs, oldOut, oldErr := os.Args, os.Stdout, os.Stderr
	os.Args, os.Stdout, os.Stderr = append([]string{"prog"}, args...), outF, errF
	defer func() { os.Args, os.Stdout, os.Stderr = oldArgs, oldOut, oldErr }()
	main()
	o, err := os.ReadFile(outPath)
	require.NoError(t, err)
	e, err := os.ReadFile(errPath)
	require.NoError(t, err)
	return string(o), string(e)
}

// -h prints the usage on standard error, as Go programs do (the flag
// package's default), and nothing on standard output: it went to
// standard output, with the usage after a bad flag, where a program's
// results go (into a file or a pipe, say).
func TestReview32UsageGoesToStderr(t *testing.T) {
	stdout, stderr := runMain(t, "-h")
	require.Empty(t, stdout)
	require.Contains(t, stderr, "sage")
}

// A flag that is wrong is reported on standard error, with the usage,
// not on standard output.
func TestReview32BadFlagGoesToStderr(t *testing.T) {
	var out, stderr bytes.Buffer
	require.Error(t, run(t.Context(), []string{"-bogus"}, &out, &stderr))
	require.Empty(t, out.String())
	require.Contains(t, stderr.String(), "flag provided but not defined: -bogus")
	require.Contains(t, stderr.String(), "Usage of quickstart")
}
