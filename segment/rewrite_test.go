package segment

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// rewriteSegment is a segment on a MemFS of 4 batches of 600 KB values
// and the bytes of its .log: its tail from offset 1 spans three
// RewriteBlocks.
func rewriteSegment(t *testing.T) (*vfs.MemFS, *Segment, []byte) {
	t.Helper()
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllDurable(mem, "/d", 0o755))
	s := mustCreate(t, mem, "/d", 0, Config{})
	require.NoError(t, mem.SyncDir("/d"))
	for o := range int64(4) {
		require.NoError(t, s.Append(simpleBatch(t, o, 1, 600_000)))
	}
	return mem, s, readFile(t, mem, logPath("/d", 0))
}

// tailCopy is a save for Rewrite that copies the tail into memory,
// counting its reads and their largest, and hands back a reader of it
// through back (nil: the copy whole).
type tailCopy struct {
	pos          int64
	data         []byte
	reads, large int
	back         func(data []byte) io.Reader
	closed       int
}

func (c *tailCopy) save(pos int64, tail io.Reader) (io.ReadCloser, error) {
	c.pos = pos
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, readerFunc(func(p []byte) (int, error) {
		c.reads++
		n, err := tail.Read(p)
		c.large = max(c.large, n)
		return n, err
	})); err != nil {
		return nil, err
	}
	c.data = buf.Bytes()
	var r io.Reader = bytes.NewReader(c.data)
	if c.back != nil {
		r = c.back(c.data)
	}
	return closerFunc{r, func() error { c.closed++; return nil }}, nil
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

type closerFunc struct {
	io.Reader
	close func() error
}

func (c closerFunc) Close() error { return c.close() }

// TestRewriteStreams: Rewrite gives save the tail to read, from its
// position, a RewriteBlock at most at a time, and writes back what the
// reader save returns gives, then closes it: the .log is as before,
// synced, and Rewrite returns the tail's length.
func TestRewriteStreams(t *testing.T) {
	mem, s, data := rewriteSegment(t)
	require.Empty(t, readFile(t, mem.CrashClone(vfs.CrashOptions{}), logPath("/d", 0)), "not synced")
	pos, err := s.PositionOf(1)
	require.NoError(t, err)
	c := &tailCopy{}
	n, err := s.Rewrite(1, c.save)
	require.NoError(t, err)
	require.Equal(t, int64(len(data))-pos, n)
	require.Equal(t, pos, c.pos)
	require.Equal(t, data[pos:], c.data)
	require.LessOrEqual(t, c.large, RewriteBlock)
	require.GreaterOrEqual(t, c.reads, 3)
	require.Equal(t, 1, c.closed)
	require.Equal(t, data, readFile(t, mem, logPath("/d", 0)))
	require.Equal(t, data, readFile(t, mem.CrashClone(vfs.CrashOptions{}), logPath("/d", 0)), "synced")

	// Without save, the same, the tail held on the heap.
	n, err = s.Rewrite(0, nil)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.Equal(t, data, readFile(t, mem, logPath("/d", 0)))

	// With nothing past the position, save is not called.
	n, err = s.Rewrite(s.NextOffset(), func(int64, io.Reader) (io.ReadCloser, error) {
		t.Error("save called with no tail")
		return nil, nil
	})
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, data, readFile(t, mem, logPath("/d", 0)))
}

// TestRewriteSaveReadsPart: a save that returns before it has read
// the whole tail fails Rewrite before anything is cut, and the reader it
// returned is closed.
func TestRewriteSaveReadsPart(t *testing.T) {
	mem, s, data := rewriteSegment(t)
	closed := 0
	n, err := s.Rewrite(1, func(_ int64, tail io.Reader) (io.ReadCloser, error) {
		b := make([]byte, 100)
		_, err := io.ReadFull(tail, b)
		require.NoError(t, err)
		return closerFunc{bytes.NewReader(b), func() error { closed++; return nil }}, nil
	})
	require.ErrorContains(t, err, "unread")
	require.Zero(t, n)
	require.Equal(t, 1, closed)
	require.Equal(t, data, readFile(t, mem, logPath("/d", 0)), "nothing cut")
}

// TestRewriteBackShort: a reader from save that gives fewer bytes
// than the tail (a copy cut short) fails Rewrite with
// io.ErrUnexpectedEOF, after the cut, what it gave written back; one
// that fails gives its error. Either is closed, and the .log's next
// fsync is not done.
func TestRewriteBackShort(t *testing.T) {
	errBack := errors.New("read back failed")
	for name, back := range map[string]func([]byte) io.Reader{
		"short": func(d []byte) io.Reader { return bytes.NewReader(d[:RewriteBlock+1]) },
		"failed": func(d []byte) io.Reader {
			return io.MultiReader(bytes.NewReader(d[:RewriteBlock+1]), readerFunc(func([]byte) (int, error) { return 0, errBack }))
		},
	} {
		t.Run(name, func(t *testing.T) {
			mem, s, data := rewriteSegment(t)
			pos, err := s.PositionOf(1)
			require.NoError(t, err)
			c := &tailCopy{back: back}
			n, err := s.Rewrite(1, c.save)
			if name == "short" {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF)
			} else {
				require.ErrorIs(t, err, errBack)
			}
			require.Zero(t, n)
			require.Equal(t, 1, c.closed)
			got := readFile(t, mem, logPath("/d", 0))
			require.Equal(t, pos+RewriteBlock, int64(len(got)), "cut, and the first block written back")
			require.Equal(t, data[:len(got)], got)
		})
	}
}

// suffixFaults fails, while armed, every op of its kind on the files
// whose name ends with suffix.
type suffixFaults struct {
	op     vfs.Op
	suffix string
	armed  atomic.Bool
}

// MaybeError fails the op on the suffix's files while armed.
func (f *suffixFaults) MaybeError(op vfs.Op, name string) error {
	if f.armed.Load() && op == f.op && strings.HasSuffix(name, f.suffix) {
		return vfs.ErrInjected
	}
	return nil
}

// TestRewriteWithoutSaveReadFails: Rewrite without save, whose read
// of the tail fails, fails with that error before anything is cut (the
// mutant that dropped the error cut the .log and wrote back zeros).
func TestRewriteWithoutSaveReadFails(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllDurable(mem, "/d", 0o755))
	inj := &suffixFaults{op: vfs.OpRead, suffix: LogSuffix}
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

// TestRewriteSaveLeavesLastByte: a save that reads all of the tail
// but its last byte fails Rewrite before anything is cut, as one that
// reads less does (the mutant that moved the check by one accepted it).
func TestRewriteSaveLeavesLastByte(t *testing.T) {
	mem, s, data := rewriteSegment(t)
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

// TestRewriteClearsFailedSync: after an fsync of the .log failed
// (which the segment remembers, failing every later Sync), Rewrite writes
// the tail anew and syncs it: it succeeds, and so do the next Syncs (the
// mutant that kept the remembered failure failed Rewrite with it).
func TestRewriteClearsFailedSync(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, vfs.MkdirAllDurable(mem, "/d", 0o755))
	inj := &suffixFaults{op: vfs.OpSync, suffix: LogSuffix}
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
	c := &tailCopy{}
	n, err := s.Rewrite(0, c.save)
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), n)
	require.NoError(t, s.Sync())
	require.True(t, bytes.Equal(data, readFile(t, mem.CrashClone(vfs.CrashOptions{}), logPath("/d", 0))), "synced")
}

// TestRewriteTailOneByteOverABlock: a tail one byte longer than a
// RewriteBlock is given to save and written back whole, its last byte in
// a block of its own (the mutants that ended the write-back with a byte
// left, or that WriteTo a read of one byte, lost it).
func TestRewriteTailOneByteOverABlock(t *testing.T) {
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
	for _, save := range []func(int64, io.Reader) (io.ReadCloser, error){copyTo, (&tailCopy{}).save, nil} {
		n, err := s.Rewrite(1, save)
		require.NoError(t, err)
		require.Equal(t, int64(RewriteBlock+1), n)
		require.True(t, bytes.Equal(data, readFile(t, mem, logPath("/d", 0))), "written back whole")
	}
}

// TestRewriteBackEndsAtABlock: a reader from save that ends exactly
// at a RewriteBlock, short of the tail, fails Rewrite with
// io.ErrUnexpectedEOF, not io.EOF (the mutant that passed io.EOF on made
// a copy cut short look like a reader's ordinary end).
func TestRewriteBackEndsAtABlock(t *testing.T) {
	mem, s, data := rewriteSegment(t)
	defer s.Close()
	pos, err := s.PositionOf(1)
	require.NoError(t, err)
	c := &tailCopy{back: func(d []byte) io.Reader { return bytes.NewReader(d[:RewriteBlock]) }}
	n, err := s.Rewrite(1, c.save)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.NotErrorIs(t, err, io.EOF)
	require.Zero(t, n)
	require.Equal(t, 1, c.closed)
	got := readFile(t, mem, logPath("/d", 0))
	require.Equal(t, pos+RewriteBlock, int64(len(got)), "cut, and the first block written back")
	require.True(t, bytes.Equal(data[:len(got)], got))
}

// TestRewriteFileOneByteShort: a .log cut one byte under the
// segment's size gives save a tail that fails with io.ErrUnexpectedEOF
// at the read that comes short, and Rewrite fails before it cuts
// anything (the mutant that took a read one byte short for a whole one
// gave the short bytes as the tail's end without an error).
func TestRewriteFileOneByteShort(t *testing.T) {
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

// TestRewriteErrors: Rewrite of a closed segment says ErrClosed,
// and an error of save is Rewrite's, with nothing cut.
func TestRewriteErrors(t *testing.T) {
	mem := vfs.NewMem()
	require.NoError(t, mem.MkdirAll("/d", 0o755))
	_, data := writeBatches(t, mem, 5, tsBase)
	s, _, err := Open(mem, "/d", 0, Config{}, OpenOptions{Active: true})
	require.NoError(t, err)
	errSave := errors.New("save failed")
	n, err := s.Rewrite(2, func(int64, io.Reader) (io.ReadCloser, error) { return nil, errSave })
	require.ErrorIs(t, err, errSave)
	require.Zero(t, n)
	require.Equal(t, data, readFile(t, mem, logPath("/d", 0)))
	require.Equal(t, int64(len(data)), s.Size())
	require.NoError(t, s.Close())
	_, err = s.Rewrite(2, nil)
	require.ErrorIs(t, err, ErrClosed)
}

// TestRewriteFileCutUnder: Rewrite reads the batches it writes
// anew first (save reads them); a .log cut shorter than the segment's
// size under it (another process) gives io.ErrUnexpectedEOF, before
// anything is cut or written.
func TestRewriteFileCutUnder(t *testing.T) {
	dir := t.TempDir()
	s := mustCreate(t, vfs.OS, dir, 0, Config{})
	for o := range int64(4) {
		require.NoError(t, s.Append(simpleBatch(t, o, 1, 50)))
	}
	half := s.Size() / 2
	require.NoError(t, os.Truncate(logPath(dir, 0), half))
	n, err := s.Rewrite(0, func(_ int64, tail io.Reader) (io.ReadCloser, error) {
		b, err := io.ReadAll(tail)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		require.Len(t, b, int(half))
		return nil, err
	})
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	require.Zero(t, n)
	require.Equal(t, half, fileSize(t, vfs.OS, logPath(dir, 0)))
}
