package segment

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/vfs"
)

// tail46Segment is a segment on a MemFS of 4 batches of 600 KB values
// and the bytes of its .log: its tail from offset 1 spans three
// RewriteBlocks.
func tail46Segment(t *testing.T) (*vfs.MemFS, *Segment, []byte) {
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

// tail46Copy is a save for Rewrite that copies the tail into memory,
// counting its reads and their largest, and hands back a reader of it
// through back (nil: the copy whole).
type tail46Copy struct {
	pos          int64
	data         []byte
	reads, large int
	back         func(data []byte) io.Reader
	closed       int
}

func (c *tail46Copy) save(pos int64, tail io.Reader) (io.ReadCloser, error) {
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

// TestTail46RewriteStreams: Rewrite gives save the tail to read, from its
// position, a RewriteBlock at most at a time, and writes back what the
// reader save returns gives, then closes it: the .log is as before,
// synced, and Rewrite returns the tail's length.
func TestTail46RewriteStreams(t *testing.T) {
	mem, s, data := tail46Segment(t)
	require.Empty(t, readFile(t, mem.CrashClone(vfs.CrashOptions{}), logPath("/d", 0)), "not synced")
	pos, err := s.PositionOf(1)
	require.NoError(t, err)
	c := &tail46Copy{}
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

// TestTail46RewriteSaveReadsPart: a save that returns before it has read
// the whole tail fails Rewrite before anything is cut, and the reader it
// returned is closed.
func TestTail46RewriteSaveReadsPart(t *testing.T) {
	mem, s, data := tail46Segment(t)
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

// TestTail46RewriteBackShort: a reader from save that gives fewer bytes
// than the tail (a copy cut short) fails Rewrite with
// io.ErrUnexpectedEOF, after the cut, what it gave written back; one
// that fails gives its error. Either is closed, and the .log's next
// fsync is not done.
func TestTail46RewriteBackShort(t *testing.T) {
	errBack := errors.New("read back failed")
	for name, back := range map[string]func([]byte) io.Reader{
		"short": func(d []byte) io.Reader { return bytes.NewReader(d[:RewriteBlock+1]) },
		"failed": func(d []byte) io.Reader {
			return io.MultiReader(bytes.NewReader(d[:RewriteBlock+1]), readerFunc(func([]byte) (int, error) { return 0, errBack }))
		},
	} {
		t.Run(name, func(t *testing.T) {
			mem, s, data := tail46Segment(t)
			pos, err := s.PositionOf(1)
			require.NoError(t, err)
			c := &tail46Copy{back: back}
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
