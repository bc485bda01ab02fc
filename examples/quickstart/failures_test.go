package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// mainChildEnv holds the arguments (newline-separated) with which
// TestMainExitsNonZero's child runs main.
const mainChildEnv = "RUNNEL_TEST_QUICKSTART_ARGS"

// A run that fails exits with status 1 and says why on standard error,
// prefixed with the program's name; standard output holds nothing of it.
// main runs in a process of its own (the test binary, running this test
// with mainChildEnv set), as os.Exit would end the test's.
func TestMainExitsNonZero(t *testing.T) {
	if testkit.ChildMain(mainChildEnv, "quickstart", main) {
		return
	}
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, tc := range []struct{ name, args, want string }{
		{"bad flag", "-sync\nsometimes", `unknown -sync "sometimes"`},
		{"dir is a file", "-dir\n" + file + "\n-records\n1", "quickstart: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := testkit.MainExit(t, "TestMainExitsNonZero", mainChildEnv, tc.args)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, "quickstart: ")
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stdout, "opened broker")
		})
	}
}

// A -dir that cannot be a directory (a file is there) fails the run with
// the broker's error, before anything is printed.
func TestDirIsAFileFailsTheRun(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, []byte("not a broker"), 0o600))
	var out bytes.Buffer
	err := run(t.Context(), []string{"-dir", file, "-records", "1"}, &out, io.Discard)
	require.Error(t, err)
	require.Empty(t, out.String())
	data, rerr := os.ReadFile(file)
	require.NoError(t, rerr)
	require.Equal(t, "not a broker", string(data), "the file is left as it was")
}

// A -topic the broker refuses fails the run with the broker's error,
// naming the topic, and nothing is produced.
func TestBadTopicNameFailsTheRun(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"-topic", "no/slash", "-records", "1"}, &out, io.Discard)
	require.ErrorContains(t, err, "no/slash")
	require.NotContains(t, out.String(), "produced")
}

// A record the broker refuses (a value larger than a batch may be) fails
// the run with the produce's error, rather than end in a consume that
// waits for records that were never written.
func TestProduceFailureFailsTheRun(t *testing.T) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"-records", "1", "-size", strconv.Itoa(2 << 20)}, &out, io.Discard)
	require.Error(t, err)
	require.NotContains(t, out.String(), "produced 1 records")
	require.NotContains(t, out.String(), "consumed")
}

// ctx ending at any step of a run (a signal, for a program that maps one
// to its ctx) fails the run with ctx's error, and still closes the broker
// cleanly: each partition's clean-shutdown marker is written, and a
// second run goes on from what the first wrote.
func TestCtxEndsMidRun(t *testing.T) {
	// The markers are lines' words that the data directory's path (named
	// after the subtest) does not hold.
	for _, marker := range []string{"opened broker", "continues at offset", "produced 100 records", "consumed 100 records"} {
		t.Run(marker, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"-dir", dir, "-records", "100", "-partitions", "1"}
			if marker == "continues at offset" { // said by a second run only
				require.NoError(t, run(t.Context(), args, io.Discard, io.Discard))
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			w := &actOnWrite{marker: marker, act: cancel}
			err := run(ctx, args, w, io.Discard)
			require.Error(t, err, w.buf.String())
			require.ErrorIs(t, err, context.Canceled)
			require.Nil(t, w.act, "ctx ended at %q", marker)
			_, serr := os.Stat(filepath.Join(dir, "orders-0", "clean-shutdown"))
			require.NoError(t, serr, "the broker was closed cleanly")

			var again bytes.Buffer
			require.NoError(t, run(t.Context(), args, &again, io.Discard))
			require.Contains(t, again.String(), "consumed 100 records")
		})
	}
}

// A batch gone bad on disk while the run is about to read it back (the
// log's bytes flipped under the broker) fails the run with the
// consumer's report of it, rather than leave it waiting for records that
// cannot be read.
func TestCorruptBatchFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	w := &actOnWrite{marker: "produced 1 records", act: func() {
		logs, err := filepath.Glob(filepath.Join(dir, "orders-0", "*.log"))
		require.NoError(t, err)
		require.Len(t, logs, 1)
		data, err := os.ReadFile(logs[0])
		require.NoError(t, err)
		i := bytes.Index(data, make([]byte, 64)) // the value: -size zeros
		require.Positive(t, i)
		data[i] ^= 0xff
		require.NoError(t, os.WriteFile(logs[0], data, 0o600))
	}}
	err := run(t.Context(), []string{"-dir", dir, "-records", "1", "-partitions", "1", "-size", "64"}, w, io.Discard)
	var corrupt *record.CorruptError
	require.ErrorAs(t, err, &corrupt)
	require.Nil(t, w.act, "the log was changed")
	require.NotContains(t, w.buf.String(), "consumed")
}

// A -linger the producer refuses (not shorter than its delivery timeout)
// fails the run with the producer's typed error, naming the option,
// before anything is produced; the broker is still closed cleanly.
func TestLingerRefusedFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := run(t.Context(), []string{"-dir", dir, "-records", "1", "-partitions", "1", "-linger", "24h"}, &out, io.Discard)
	require.ErrorIs(t, err, producer.ErrInvalidOption)
	require.ErrorContains(t, err, "Linger")
	require.NotContains(t, out.String(), "produced")
	_, serr := os.Stat(filepath.Join(dir, "orders-0", "clean-shutdown"))
	require.NoError(t, serr, "the broker was closed cleanly")
}

// actOnWrite is an io.Writer that keeps what is written and calls act
// once, at the first write that holds marker.
type actOnWrite struct {
	buf    bytes.Buffer
	marker string
	act    func()
}

func (w *actOnWrite) Write(p []byte) (int, error) {
	if w.act != nil && bytes.Contains(p, []byte(w.marker)) {
		w.act()
		w.act = nil
	}
	return w.buf.Write(p)
}

// A broker whose Close fails (here its partitions' directories are gone
// when it closes, so their producer state and markers cannot be
// written; with -sync never, the data's flush could fail so too) fails
// the run: the error was dropped, and quickstart exited 0 as if its
// records were safely on disk.
func TestCloseErrorFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	w := &actOnWrite{marker: "consumed", act: func() {
		for p := range 3 {
			path := filepath.Join(dir, "orders-"+strconv.Itoa(p))
			if err := os.RemoveAll(path); err != nil { // Windows: its files are open
				t.Skip("the partition's directory cannot be removed while its files are open:", err)
			}
			if _, err := os.Stat(path); err == nil {
				t.Skip("the partition's directory cannot be removed while its files are open")
			}
		}
	}}
	err := run(context.Background(), []string{"-dir", dir, "-records", "100", "-sync", "never"}, w, io.Discard)
	require.Error(t, err)
	require.True(t, strings.Contains(w.buf.String(), "consumed 100 records"), w.buf.String())
}
