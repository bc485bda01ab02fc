package segment

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestWriteToReplacedFile: WriteTo on the OS reopens the .log to hand the
// kernel a file of its own. Should the name meanwhile lead to another file
// (compaction's swap gives a cleaned segment the same name, between a
// reader's check that the segment is open and WriteTo's open of it), it
// must not send that file's bytes as the segment's.
func TestWriteToReplacedFile(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	m := &model{}
	appendBatches(t, s, m, simpleBatch(t, 0, 4, 300), simpleBatch(t, 4, 4, 300))
	size := s.Size()
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, bytes.Repeat([]byte{0xee}, int(size)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, logPath(dir, 0)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf, 0, size)
	if err == nil || bytes.Contains(buf.Bytes(), []byte{0xee, 0xee, 0xee, 0xee}) {
		t.Fatalf("WriteTo of a segment whose .log name leads to another file = %d, %v; sent the other file's bytes: %v",
			n, err, bytes.Contains(buf.Bytes(), []byte{0xee, 0xee, 0xee, 0xee}))
	}
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteTo error %v; want one matching ErrClosed", err)
	}
}

// TestWriteToShortFile: a .log shorter than the range (a TruncateTo cuts
// the file before it lowers the size readers see) gives
// io.ErrUnexpectedEOF, not a short count with no error.
func TestWriteToShortFile(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	m := &model{}
	appendBatches(t, s, m, simpleBatch(t, 0, 4, 300), simpleBatch(t, 4, 4, 300))
	size := s.Size()
	if err := os.Truncate(logPath(dir, 0), size/2); err != nil {
		t.Fatal(err)
	}
	n, err := s.WriteTo(io.Discard, 0, size)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("WriteTo(0, %d) of a file cut to %d = %d, %v; want io.ErrUnexpectedEOF", size, size/2, n, err)
	}
}
