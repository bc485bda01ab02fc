package segment

import (
	"bytes"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
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
		if runtime.GOOS != "windows" {
			t.Fatal(err)
		}
		// Windows' MoveFileEx does not replace a file that is open (the
		// segment has its .log open). Where Windows deletes with POSIX
		// semantics, the name is free once the .log is removed (as
		// compaction removes it before its swap); where it does not
		// (Wine, older versions), the name stays the open file's until
		// it is closed, and the case this test is about cannot happen.
		if err := vfs.OS.Remove(logPath(dir, 0)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, logPath(dir, 0)); err != nil {
			t.Skipf("the name of a removed file that is still open cannot be given to another file here: %v", err)
		}
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

// heldWriter holds the first Write until release is closed, having said on
// started that it is there, and keeps what it is given.
type heldWriter struct {
	started, release chan struct{}
	once             bool
	buf              bytes.Buffer
}

func (w *heldWriter) Write(p []byte) (int, error) {
	if !w.once {
		w.once = true
		close(w.started)
		<-w.release
	}
	return w.buf.Write(p)
}

// TestDeleteDuringWriteTo: a segment can be deleted (by retention,
// compaction, a deleted topic) while a WriteTo holds the .log open of its
// own to hand it to the kernel, and the WriteTo still sends the bytes it
// was asked for. On Windows WriteTo's handle was opened without sharing
// delete access, and the removal failed with a sharing violation (which
// fences the log).
func TestDeleteDuringWriteTo(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	m := &model{}
	appendBatches(t, s, m, simpleBatch(t, 0, 4, 300), simpleBatch(t, 4, 4, 300))
	size := s.Size()
	want, err := os.ReadFile(logPath(dir, 0))
	if err != nil {
		t.Fatal(err)
	}
	w := &heldWriter{started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := s.WriteTo(w, 0, size)
		done <- err
	}()
	testkit.AwaitHold(t, w.started, done, "the WriteTo")
	derr := s.Delete()
	close(w.release)
	if err := testkit.Await(t, done, "WriteTo's answer"); err != nil {
		t.Errorf("WriteTo across the segment's Delete: %v", err)
	}
	if derr != nil {
		t.Fatalf("Delete during a WriteTo: %v", derr)
	}
	if !bytes.Equal(w.buf.Bytes(), want) {
		t.Errorf("WriteTo sent %d bytes, not the segment's %d", w.buf.Len(), len(want))
	}
	names, err := vfs.OS.List(dir)
	if err != nil || len(names) != 0 {
		t.Fatalf("directory after Delete holds %v, %v", names, err)
	}
	if _, err := s.WriteTo(io.Discard, 0, size); !errors.Is(err, ErrClosed) {
		t.Fatalf("WriteTo after Delete: %v; want ErrClosed", err)
	}
}

// TestOSReadsCheckAppendedBatches: on the OS, batches that this Segment
// appended itself still have their CRCs checked when they are read (the
// page cache may be refilled from a disk that went bad): a record byte
// changed on disk is reported, not served.
func TestOSReadsCheckAppendedBatches(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	m := &model{}
	appendBatches(t, s, m, simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50), simpleBatch(t, 0, 2, 50))
	victim := m.batches[1]
	editFile(t, vfs.OS, logPath(dir, 0), func(f vfs.File) {
		_, err := f.WriteAt([]byte{'!'}, victim.pos+victim.size-5) // in the last record's value
		require.NoError(t, err)
	})
	data, err := s.Read(0, 1<<20)
	require.NoError(t, err)
	require.Equal(t, m.batches[0].data, data, "Read from 0 stops before the changed batch")
	var ce *record.CorruptError
	_, err = s.Read(victim.pos, 1<<20)
	require.ErrorAs(t, err, &ce)
	_, err = s.ReadOffset(nil, victim.base, 1<<20, math.MaxInt64)
	require.ErrorAs(t, err, &ce)
}

// TestWriteToRemoved: WriteTo of a segment on the OS whose .log
// was removed by name (the segment deleted during the call) reopens the
// name to send the file, finds nothing, and says so with an error
// matching ErrClosed, as its doc says.
func TestWriteToRemoved(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("removes a file the segment holds open")
	}
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	require.NoError(t, s.Append(simpleBatch(t, 0, 3, 50)))
	require.NoError(t, os.Remove(logPath(dir, 0)))
	var w bytes.Buffer
	n, err := s.WriteTo(&w, 0, s.Size())
	require.ErrorIs(t, err, ErrClosed)
	require.Contains(t, err.Error(), "was removed")
	require.Zero(t, n)
	require.Zero(t, w.Len())
}

// TestReadIntoOSFails: ReadInto, on a file system without views
// (the OS's), reads into the caller's buffer; a read that fails is its
// error, not a corruption, and a file cut shorter than the segment's size
// under it (another process) gives io.ErrUnexpectedEOF.
func TestReadIntoOSFails(t *testing.T) {
	dir := t.TempDir()
	var fail atomic.Bool
	fsys := vfs.WithFaults(vfs.OS, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpRead && fail.Load() {
			return vfs.ErrInjected
		}
		return nil
	}))
	s := mustCreate(t, fsys, dir, 0, Config{})
	b := simpleBatch(t, 0, 3, 50)
	require.NoError(t, s.Append(b))
	dst := make([]byte, 0, 1<<16)
	fail.Store(true)
	_, err := s.ReadInto(dst, 0, 1<<16)
	fail.Store(false)
	requireInjected(t, err, "ReadInto")
	got, err := s.ReadInto(dst, 0, 1<<16)
	require.NoError(t, err)
	require.Equal(t, []byte(b), got)
	require.NoError(t, os.Truncate(logPath(dir, 0), int64(len(b)/2)))
	_, err = s.ReadInto(dst, 0, 1<<16)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// TestWriteToFileOneByteShort: a .log one byte shorter than the range
// WriteTo is asked for gives io.ErrUnexpectedEOF.
func TestWriteToFileOneByteShort(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	appendBatches(t, s, &model{}, simpleBatch(t, 0, 4, 300))
	size := s.Size()
	require.NoError(t, os.Truncate(logPath(dir, 0), size-1))
	n, err := s.WriteTo(io.Discard, 0, size)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Equal(t, size-1, n)
}
