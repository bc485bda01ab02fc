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

	"github.com/stretchr/testify/require"
)

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
func TestReview30CloseErrorFailsTheRun(t *testing.T) {
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
