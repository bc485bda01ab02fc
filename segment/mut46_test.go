package segment

import (
	"bytes"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// mut46Faults fails, while armed, every op of its kind on the files
// whose name ends with suffix.
type mut46Faults struct {
	op     vfs.Op
	suffix string
	armed  atomic.Bool
}

// MaybeError fails the op on the suffix's files while armed.
func (f *mut46Faults) MaybeError(op vfs.Op, name string) error {
	if f.armed.Load() && op == f.op && strings.HasSuffix(name, f.suffix) {
		return vfs.ErrInjected
	}
	return nil
}

// TestMut46RewriteWithoutSaveReadFails: Rewrite without save, whose read
// of the tail fails, fails with that error before anything is cut (the
// mutant that dropped the error cut the .log and wrote back zeros).
func TestMut46RewriteWithoutSaveReadFails(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllDurable(mem, "/d", 0o755))
	inj := &mut46Faults{op: vfs.OpRead, suffix: LogSuffix}
	s := mustCreate(t, vfs.WithFaults(mem, inj), "/d", 0, Config{})
	defer s.Close()
	for o := range int64(3) {
		require.NoError(t, s.Append(simpleBatch(t, o, 1, 1000)))
	}
	data := readFile(t, mem, logPath("/d", 0))
	inj.armed.Store(true)
	n, err := s.Rewrite(0, nil)
	inj.armed.Store(false)
	requireInjected(t, err, "Rewrite")
	require.Zero(t, n)
	require.Equal(t, data, readFile(t, mem, logPath("/d", 0)), "nothing cut")
}

// TestMut46RewriteSaveLeavesLastByte: a save that reads all of the tail
// but its last byte fails Rewrite before anything is cut, as one that
// reads less does (the mutant that moved the check by one accepted it).
func TestMut46RewriteSaveLeavesLastByte(t *testing.T) {
	mem, s, data := tail46Segment(t)
	defer s.Close()
	pos, err := s.PositionOf(1)
	require.NoError(t, err)
	closed := 0
	n, err := s.Rewrite(1, func(_ int64, tail io.Reader) (io.ReadCloser, error) {
		b := make([]byte, int64(len(data))-pos-1)
		_, err := io.ReadFull(tail, b)
		require.NoError(t, err)
		return closerFunc{io.MultiReader(bytes.NewReader(b), bytes.NewReader([]byte{0})), func() error { closed++; return nil }}, nil
	})
	require.ErrorContains(t, err, "unread")
	require.Zero(t, n)
	require.Equal(t, 1, closed)
	require.True(t, bytes.Equal(data, readFile(t, mem, logPath("/d", 0))), "nothing cut")
}

// TestMut46RewriteClearsFailedSync: after an fsync of the .log failed
// (which the segment remembers, failing every later Sync), Rewrite writes
// the tail anew and syncs it: it succeeds, and so do the next Syncs (the
// mutant that kept the remembered failure failed Rewrite with it).
func TestMut46RewriteClearsFailedSync(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllDurable(mem, "/d", 0o755))
	inj := &mut46Faults{op: vfs.OpSync, suffix: LogSuffix}
	s := mustCreate(t, vfs.WithFaults(mem, inj), "/d", 0, Config{})
	defer s.Close()
	require.NoError(t, mem.SyncDir("/d"))
	for o := range int64(3) {
		require.NoError(t, s.Append(simpleBatch(t, o, 1, 1000)))
	}
	data := readFile(t, mem, logPath("/d", 0))
	inj.armed.Store(true)
	requireInjected(t, s.Sync(), "Sync")
	inj.armed.Store(false)
	require.Error(t, s.Sync(), "the failure is remembered")
	c := &tail46Copy{}
	n, err := s.Rewrite(0, c.save)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.NoError(t, s.Sync())
	require.True(t, bytes.Equal(data, readFile(t, mem.CrashClone(vfs.CrashOptions{}), logPath("/d", 0))), "synced")
}

// TestMut46RewriteTailOneByteOverABlock: a tail one byte longer than a
// RewriteBlock is given to save and written back whole, its last byte in
// a block of its own (the mutants that ended the write-back with a byte
// left, or that WriteTo a read of one byte, lost it).
func TestMut46RewriteTailOneByteOverABlock(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllDurable(mem, "/d", 0o755))
	s := mustCreate(t, mem, "/d", 0, Config{})
	defer s.Close()
	require.NoError(t, s.Append(simpleBatch(t, 0, 1, 100)))
	b1 := simpleBatch(t, 1, 1, 600_000)
	require.NoError(t, s.Append(b1))
	var b2 []byte
	for v := RewriteBlock + 1 - len(b1) - 100; v < RewriteBlock; v++ {
		if b := simpleBatch(t, 2, 1, v); len(b1)+len(b) == RewriteBlock+1 {
			b2 = b
			break
		}
	}
	require.NotNil(t, b2, "no value size makes the tail a block and a byte")
	require.NoError(t, s.Append(b2))
	data := readFile(t, mem, logPath("/d", 0))
	pos, err := s.PositionOf(1)
	require.NoError(t, err)
	require.Equal(t, int64(RewriteBlock+1), int64(len(data))-pos)
	// The tail read through its WriteTo (io.Copy's way, as package log
	// does), through Read alone, and not given to a save.
	copyTo := func(_ int64, tail io.Reader) (io.ReadCloser, error) {
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, tail); err != nil {
			return nil, err
		}
		return io.NopCloser(&buf), nil
	}
	for _, save := range []func(int64, io.Reader) (io.ReadCloser, error){copyTo, (&tail46Copy{}).save, nil} {
		n, err := s.Rewrite(1, save)
		require.NoError(t, err)
		require.Equal(t, int64(RewriteBlock+1), n)
		require.True(t, bytes.Equal(data, readFile(t, mem, logPath("/d", 0))), "written back whole")
	}
}

// TestMut46RewriteBackEndsAtABlock: a reader from save that ends exactly
// at a RewriteBlock, short of the tail, fails Rewrite with
// io.ErrUnexpectedEOF, not io.EOF (the mutant that passed io.EOF on made
// a copy cut short look like a reader's ordinary end).
func TestMut46RewriteBackEndsAtABlock(t *testing.T) {
	mem, s, data := tail46Segment(t)
	defer s.Close()
	pos, err := s.PositionOf(1)
	require.NoError(t, err)
	c := &tail46Copy{back: func(d []byte) io.Reader { return bytes.NewReader(d[:RewriteBlock]) }}
	n, err := s.Rewrite(1, c.save)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NotErrorIs(t, err, io.EOF)
	require.Zero(t, n)
	require.Equal(t, 1, c.closed)
	got := readFile(t, mem, logPath("/d", 0))
	require.Equal(t, pos+RewriteBlock, int64(len(got)), "cut, and the first block written back")
	require.True(t, bytes.Equal(data[:len(got)], got))
}

// TestMut46RewriteFileOneByteShort: a .log cut one byte under the
// segment's size gives save a tail that fails with io.ErrUnexpectedEOF
// at the read that comes short, and Rewrite fails before it cuts
// anything (the mutant that took a read one byte short for a whole one
// gave the short bytes as the tail's end without an error).
func TestMut46RewriteFileOneByteShort(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllDurable(mem, "/d", 0o755))
	s := mustCreate(t, mem, "/d", 0, Config{})
	defer s.Close()
	for o := range int64(3) {
		require.NoError(t, s.Append(simpleBatch(t, o, 1, 100)))
	}
	size := s.Size()
	f, err := mem.Open(logPath("/d", 0))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(size-1))
	require.NoError(t, f.Close())
	n, err := s.Rewrite(0, func(_ int64, tail io.Reader) (io.ReadCloser, error) {
		b := make([]byte, size+10)
		k, err := tail.Read(b)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.Equal(t, int(size)-1, k)
		return nil, err
	})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Zero(t, n)
	require.Equal(t, size-1, int64(len(readFile(t, mem, logPath("/d", 0)))), "nothing cut")
}
