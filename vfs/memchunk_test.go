package vfs

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// newMemChunked returns an empty MemFS whose files have chunks of the
// given sizes (see memChunkSizes), for tests of chunk boundaries.
func newMemChunked(chunkMin, chunkGrow, chunkMax int) *MemFS {
	return newMemSized(&memChunkSizes{min: chunkMin, grow: chunkGrow, max: chunkMax})
}

// memChunks returns the file's chunks, as (start, length) pairs.
func memChunks(f File) [][2]int {
	n := f.(*memFile).n
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out [][2]int
	for _, c := range n.chunks {
		out = append(out, [2]int{c.start, len(c.buf)})
	}
	return out
}

// chunkRoom returns how many more bytes the file's last chunk takes.
func chunkRoom(f File) int {
	n := f.(*memFile).n
	n.mu.RLock()
	defer n.mu.RUnlock()
	c := n.chunks[len(n.chunks)-1]
	return cap(c.buf) - len(c.buf)
}

// ownBytes reports whether b is memory of one of f's chunks (a view, not a
// copy).
func ownBytes(f File, b []byte) bool {
	n := f.(*memFile).n
	n.mu.RLock()
	defer n.mu.RUnlock()
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	for _, c := range n.chunks {
		lo := uintptr(unsafe.Pointer(unsafe.SliceData(c.buf)))
		if p >= lo && p+uintptr(len(b)) <= lo+uintptr(cap(c.buf)) {
			return true
		}
	}
	return false
}

func fill(n int, c byte) []byte { return bytes.Repeat([]byte{c}, n) }

// A write that exactly fills a chunk stays in it; one that does not fit
// opens a new chunk whole, leaving the old one's room unused; a write
// larger than the largest chunk size gets a chunk of its own. The bytes of
// every write are one view.
func TestMemChunkBoundaries(t *testing.T) {
	m := newMemChunked(16, 0, 64)
	f := memCreate(t, m, "/f")
	var want []byte
	write := func(p []byte) {
		t.Helper()
		off := len(want)
		_, err := f.Write(p)
		require.NoError(t, err)
		want = append(want, p...)
		v, err := f.(PrefixViewer).ViewPrefix(int64(off), len(p))
		require.NoError(t, err)
		require.Equal(t, p, v, "one write is one contiguous view")
		require.True(t, ownBytes(f, v))
		checkChunks(t, f, "")
	}

	write(fill(10, 'a'))
	require.Equal(t, [][2]int{{0, 10}}, memChunks(f))
	write(fill(chunkRoom(f), 'b')) // exactly fills the first chunk
	first := memChunks(f)[0][1]
	require.Len(t, memChunks(f), 1)
	require.Zero(t, chunkRoom(f))

	write(fill(3, 'c')) // a new chunk, about as large as the file so far
	require.Equal(t, [][2]int{{0, first}, {first, 3}}, memChunks(f))
	require.GreaterOrEqual(t, chunkRoom(f)+3, first)

	write(fill(chunkRoom(f)+1, 'd')) // one byte too many: a new chunk, whole
	require.Len(t, memChunks(f), 3)
	require.Equal(t, [2]int{first, 3}, memChunks(f)[1], "the second chunk's room stays unused")

	write(fill(200, 'e')) // beyond chunkMax: a chunk of its own
	cs := memChunks(f)
	require.Equal(t, 200, cs[len(cs)-1][1])
	write(fill(1, 'f'))
	require.Equal(t, 200, memChunks(f)[len(cs)-1][1])
	require.LessOrEqual(t, chunkRoom(f)+1, 64, "after a large write, chunks are back to chunkMax")

	require.Equal(t, string(want), memRead(t, m, "/f"))
	b := make([]byte, len(want))
	_, err := f.ReadAt(b, 0)
	require.NoError(t, err)
	require.Equal(t, want, b)
	for off := range len(want) { // every offset finds its chunk
		got := make([]byte, 1)
		_, err := f.ReadAt(got, int64(off))
		require.NoError(t, err)
		require.Equal(t, want[off], got[0], "offset %d", off)
	}
}

// With the default sizes, small files stay small, and a large file is held
// in chunks of at most memChunkMax with little room unused; a single write
// larger than that is one chunk.
func TestMemChunkSizes(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/small", "0123456789")
	require.EqualValues(t, 10, m.Usage())
	require.LessOrEqual(t, m.Allocated(), int64(memChunkMin))

	f := memCreate(t, m, "/big")
	p := fill(1000, 'x')
	const total = 20 << 20
	for range total / len(p) {
		_, err := f.Write(p)
		require.NoError(t, err)
	}
	cs := memChunks(f)
	require.Less(t, len(cs), 30, "chunk count grows with the logarithm of the size, then linearly")
	for _, c := range cs {
		require.LessOrEqual(t, c[1], memChunkMax)
	}
	size := total / len(p) * len(p)
	require.EqualValues(t, 10+size, m.Usage())
	unused := m.Allocated() - m.Usage()
	require.GreaterOrEqual(t, unused, int64(0))
	require.Less(t, unused, int64(memChunkMax+len(cs)*len(p)),
		"at most the last chunk's room, and less than a write per chunk")

	huge := fill(memChunkMax+123, 'h')
	_, err := f.Write(huge)
	require.NoError(t, err)
	v, err := f.(PrefixViewer).ViewPrefix(int64(size), len(huge))
	require.NoError(t, err)
	require.Len(t, v, len(huge))
	require.True(t, ownBytes(f, v))
}

// A small file is one chunk that moves to a larger array as it grows, up
// to chunkGrow bytes; views of the old array stay as they were.
func TestMemSmallFileOneChunk(t *testing.T) {
	m := newMemChunked(4, 40, 16)
	f := memCreate(t, m, "/f")
	var want []byte
	type held struct {
		b    []byte
		want string
	}
	var views []held
	for i := range 13 { // 3 bytes each: 39 bytes in one chunk
		p := []byte{byte('a' + i), byte('a' + i), byte('a' + i)}
		_, err := f.Write(p)
		require.NoError(t, err)
		want = append(want, p...)
		require.Equal(t, [][2]int{{0, len(want)}}, memChunks(f))
		v, err := f.(PrefixViewer).ViewPrefix(0, len(want))
		require.NoError(t, err)
		require.Equal(t, want, v, "the whole file in one view")
		views = append(views, held{v, string(v)})
		_, err = f.WriteAt([]byte{byte('0' + i)}, 0) // copies the viewed chunk
		require.NoError(t, err)
		want[0] = byte('0' + i)
	}
	for i, h := range views {
		require.Equal(t, h.want, string(h.b), "view %d", i)
	}
	require.EqualValues(t, 40, m.Allocated(), "doubling, capped at chunkGrow")

	_, err := f.Write([]byte("XY")) // 41 bytes: a second chunk
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 39}, {39, 2}}, memChunks(f))
	require.Equal(t, string(want)+"XY", memRead(t, m, "/f"))

	// Truncated back to one chunk, it grows by moving again.
	require.NoError(t, f.Truncate(10))
	_, err = f.Write(fill(20, 'z'))
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 30}}, memChunks(f))
}

// View copies a range that spans chunks, and returns a chunk's own bytes
// otherwise; ViewPrefix never copies and stops at the chunk's end; both
// stay unchanged whatever the file does later.
func TestMemViewAcrossChunks(t *testing.T) {
	m := newMemChunked(4, 0, 4)
	f := memCreate(t, m, "/f")
	for _, s := range []string{"abcd", "ef", "ghijkl"} { // chunks [0,4) [4,6) [6,12)
		memWrite(t, f, s)
	}
	require.Equal(t, [][2]int{{0, 4}, {4, 2}, {6, 6}}, memChunks(f))

	tests := []struct {
		off, n       int
		view, prefix string
		own          bool // the View is the chunk's memory
	}{
		{0, 4, "abcd", "abcd", true},
		{1, 2, "bc", "bc", true},
		{2, 4, "cdef", "cd", false},
		{3, 9, "defghijkl", "d", false},
		{4, 2, "ef", "ef", true},
		{5, 7, "fghijkl", "f", false},
		{0, 12, "abcdefghijkl", "abcd", false},
		{11, 1, "l", "l", true},
		{12, 0, "", "", false},
		{7, 0, "", "", false},
	}
	type held struct {
		b    []byte
		want string
	}
	var views []held
	for _, tc := range tests {
		v, err := f.(Viewer).View(int64(tc.off), tc.n)
		require.NoError(t, err)
		require.Equal(t, tc.view, string(v), "View(%d, %d)", tc.off, tc.n)
		require.Equal(t, len(v), cap(v))
		require.Equal(t, tc.own, tc.n > 0 && ownBytes(f, v), "View(%d, %d)", tc.off, tc.n)

		p, err := f.(PrefixViewer).ViewPrefix(int64(tc.off), tc.n)
		require.NoError(t, err)
		require.Equal(t, tc.prefix, string(p), "ViewPrefix(%d, %d)", tc.off, tc.n)
		require.Equal(t, len(p), cap(p))
		if tc.n > 0 {
			require.True(t, ownBytes(f, p))
		}

		rp, err := ReadViewPrefix(f, int64(tc.off), tc.n)
		require.NoError(t, err)
		require.Equal(t, tc.prefix, string(rp))
		views = append(views, held{v, tc.view}, held{p, tc.prefix})
	}

	// Overwrite everything across the chunks, truncate, append, remove.
	_, err := f.WriteAt([]byte("ABCDEFGHIJKL"), 0)
	require.NoError(t, err)
	require.Equal(t, "ABCDEFGHIJKL", memRead(t, m, "/f"))
	require.NoError(t, f.Truncate(5))
	memWrite(t, f, "0123456789")
	_, err = f.WriteAt([]byte("zz"), 4)
	require.NoError(t, err)
	require.Equal(t, "ABCDzz123456789", memRead(t, m, "/f"))
	require.NoError(t, m.Remove("/f"))
	_, err = f.WriteAt(fill(15, '#'), 0)
	require.NoError(t, err)
	for _, h := range views {
		require.Equal(t, h.want, string(h.b))
	}
}

// ViewPrefix's errors are View's, and ReadViewPrefix falls back to
// ReadView on files without the ability.
func TestMemViewPrefixErrors(t *testing.T) {
	m := newMemChunked(2, 0, 2)
	f, err := m.Create("/f")
	require.NoError(t, err)
	memWrite(t, f, "ab")
	_, err = f.Write([]byte("cd"))
	require.NoError(t, err)
	pv := f.(PrefixViewer)

	_, err = pv.ViewPrefix(-1, 1)
	require.ErrorIs(t, err, fs.ErrInvalid)
	var pe *os.PathError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "viewprefix", pe.Op)
	_, err = pv.ViewPrefix(0, -1)
	require.ErrorIs(t, err, fs.ErrInvalid)
	_, err = pv.ViewPrefix(3, 2)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the range must exist, though only a prefix is returned")
	_, err = pv.ViewPrefix(5, 0)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	b, err := pv.ViewPrefix(4, 0)
	require.NoError(t, err)
	require.Empty(t, b)
	b, err = pv.ViewPrefix(1, 3)
	require.NoError(t, err)
	require.Equal(t, "b", string(b))

	// Without PrefixViewer, the whole range, as ReadView gives it.
	b, err = ReadViewPrefix(stubFile{f}, 1, 3)
	require.NoError(t, err)
	require.Equal(t, "bcd", string(b))
	_, err = ReadViewPrefix(stubFile{f}, 1, 4)
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	b, err = ReadViewPrefix(stubV{f, f.(Viewer)}, 1, 3)
	require.NoError(t, err)
	require.Equal(t, "bcd", string(b))

	require.NoError(t, f.Close())
	_, err = pv.ViewPrefix(0, 1)
	require.ErrorIs(t, err, fs.ErrClosed)
}

// An overwrite across chunks copies only the chunks whose overwritten
// bytes a view holds; the others are written in place.
func TestMemCopyOnWritePerChunk(t *testing.T) {
	m := newMemChunked(8, 0, 8)
	f := memCreate(t, m, "/f")
	for range 3 {
		_, err := f.Write(fill(8, '.'))
		require.NoError(t, err)
	}
	n := f.(*memFile).n
	arrays := func() [3]uintptr {
		var a [3]uintptr
		for i, c := range n.chunks {
			a[i] = uintptr(unsafe.Pointer(unsafe.SliceData(c.buf)))
		}
		return a
	}
	a := arrays()
	v, err := f.(Viewer).View(9, 2) // in the middle chunk
	require.NoError(t, err)
	_, err = f.WriteAt(fill(24, 'x'), 0)
	require.NoError(t, err)
	b := arrays()
	require.Equal(t, a[0], b[0])
	require.NotEqual(t, a[1], b[1], "the viewed chunk is copied")
	require.Equal(t, a[2], b[2])
	require.Equal(t, "..", string(v))
	require.Equal(t, strings.Repeat("x", 24), memRead(t, m, "/f"))

	// Bytes of the viewed chunk beyond the view are not held: in place.
	v, err = f.(Viewer).View(8, 2)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("yy"), 12)
	require.NoError(t, err)
	require.Equal(t, b, arrays())
	require.Equal(t, "xx", string(v))
}

// A truncation cuts chunks; bytes cut from the middle of a chunk that a
// view holds are not written over by later appends.
func TestMemTruncateChunks(t *testing.T) {
	m := newMemChunked(16, 0, 16)
	f := memCreate(t, m, "/f")
	for _, s := range []string{"0123456789", "abcdefghij", "ABCDEFGHIJ"} {
		memWrite(t, f, s)
	}
	require.Equal(t, [][2]int{{0, 10}, {10, 10}, {20, 10}}, memChunks(f))
	v, err := f.(Viewer).View(12, 5)
	require.NoError(t, err)

	require.NoError(t, f.Truncate(14)) // into the viewed bytes
	require.Equal(t, [][2]int{{0, 10}, {10, 4}}, memChunks(f))
	memWrite(t, f, "++")
	require.Equal(t, [][2]int{{0, 10}, {10, 4}, {14, 2}}, memChunks(f), "the cut chunk is capped")
	require.Equal(t, "cdefg", string(v))

	require.NoError(t, f.Truncate(15)) // nothing viewed is cut: room reused
	memWrite(t, f, "**")
	require.Equal(t, [][2]int{{0, 10}, {10, 4}, {14, 3}}, memChunks(f))
	require.Equal(t, "0123456789abcd+**", memRead(t, m, "/f"))
	require.Equal(t, "cdefg", string(v))

	require.NoError(t, f.Truncate(10)) // at a chunk boundary
	require.Equal(t, [][2]int{{0, 10}}, memChunks(f))
	require.NoError(t, f.Truncate(13)) // zero-extends, one chunk
	require.Equal(t, "0123456789\x00\x00\x00", memRead(t, m, "/f"))
	require.NoError(t, f.Truncate(0))
	require.Empty(t, memChunks(f))
	require.Zero(t, m.Allocated())
	_, err = f.WriteAt([]byte("end"), 5) // a gap and the bytes: one chunk
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, 8}}, memChunks(f))
	require.Equal(t, "\x00\x00\x00\x00\x00end", memRead(t, m, "/f"))
	require.Equal(t, "cdefg", string(v))
}

// What a crash leaves, with the synced size and the unsynced tail falling
// across chunk boundaries, in every tail mode; the clone shares the synced
// chunks' memory, and neither file's later changes reach the other.
func TestMemCrashAcrossChunks(t *testing.T) {
	const synced, tail = "0123456789abcdefghij", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	for _, mode := range []TailMode{TailDrop, TailTorn, TailZeros, TailGarbage} {
		t.Run(mode.String(), func(t *testing.T) {
			for seed := range 20 {
				m := newMemChunked(4, 0, 8)
				f, err := m.Create("/f")
				require.NoError(t, err)
				require.NoError(t, m.SyncDir("/"))
				for _, s := range []string{synced[:7], synced[7:15], synced[15:]} {
					memWrite(t, f, s)
				}
				require.NoError(t, f.Sync())
				for _, s := range []string{tail[:3], tail[3:12], tail[12:]} {
					memWrite(t, f, s)
				}
				c := m.CrashClone(CrashOptions{Tail: mode, Rand: rand.New(rand.NewPCG(uint64(seed), 3))})
				got := memRead(t, c, "/f")
				require.True(t, strings.HasPrefix(got, synced), got)
				rest := got[len(synced):]
				switch mode {
				case TailDrop:
					require.Empty(t, rest)
				case TailTorn:
					require.True(t, strings.HasPrefix(tail, rest))
				case TailZeros:
					require.NotEmpty(t, rest)
					require.LessOrEqual(t, len(rest), len(tail))
					require.Equal(t, strings.Repeat("\x00", len(rest)), rest)
				case TailGarbage:
					require.NotEmpty(t, rest)
					require.LessOrEqual(t, len(rest), len(tail))
				}
				g, err := c.Open("/f")
				require.NoError(t, err)
				checkChunks(t, g, mode.String())
				v, err := g.(Viewer).View(0, 7)
				require.NoError(t, err)
				require.True(t, ownBytes(f, v), "the clone shares the synced chunks")

				// The original overwrites everything; the clone appends and
				// overwrites; each sees only its own changes.
				_, err = f.WriteAt(fill(len(synced)+len(tail), '#'), 0)
				require.NoError(t, err)
				memWrite(t, g, "+")
				_, err = g.WriteAt([]byte("!"), 3)
				require.NoError(t, err)
				require.Equal(t, got[:3]+"!"+got[4:]+"+", memRead(t, c, "/f"))
				require.Equal(t, strings.Repeat("#", len(synced)+len(tail)), memRead(t, m, "/f"))
				require.Equal(t, synced[:7], string(v))
				require.NoError(t, g.Close())
				require.NoError(t, f.Close())
			}
		})
	}

	// Synced bytes overwritten and cut across chunks: the clone has the
	// synced content back.
	m := newMemChunked(4, 0, 8)
	f := memCreate(t, m, "/f")
	require.NoError(t, m.SyncDir("/"))
	for _, s := range []string{synced[:7], synced[7:15], synced[15:]} {
		memWrite(t, f, s)
	}
	require.NoError(t, f.Sync())
	_, err := f.WriteAt([]byte("xxxxx"), 5) // across the first boundary
	require.NoError(t, err)
	require.NoError(t, f.Truncate(9)) // drops a chunk and a half
	memWrite(t, f, "after")
	require.Equal(t, synced, memRead(t, m.CrashClone(CrashOptions{Tail: TailTorn}), "/f"))
	require.Equal(t, "01234xxxxafter", memRead(t, m, "/f"))
}

// Allocated counts the memory of named files' chunks.
func TestMemAllocated(t *testing.T) {
	m := newMemChunked(64, 0, 64)
	require.Zero(t, m.Allocated())
	memPut(t, m, "/a", "x")
	require.GreaterOrEqual(t, m.Allocated(), int64(64))
	one := m.Allocated()
	f := memCreate(t, m, "/b")
	_, err := f.Write(fill(100, 'b'))
	require.NoError(t, err)
	_, err = f.Write(fill(10, 'b')) // a new chunk of at least 64
	require.NoError(t, err)
	require.GreaterOrEqual(t, m.Allocated(), one+100+64)
	require.EqualValues(t, 111, m.Usage())

	c := m.CrashClone(CrashOptions{})
	require.EqualValues(t, 1, c.Usage(), "/b was never synced, its name neither")
	require.NoError(t, f.Sync())
	require.NoError(t, m.SyncDir("/"))
	c = m.CrashClone(CrashOptions{})
	require.Equal(t, m.Usage(), c.Usage())
	require.Equal(t, m.Allocated(), c.Allocated(), "shared arrays count on both sides")

	require.NoError(t, m.Remove("/b"))
	require.Equal(t, one, m.Allocated(), "an open but removed file is not counted")
	require.NoError(t, m.Remove("/a"))
	require.Zero(t, m.Allocated())
}

// A View that spans chunks is a copy and holds nothing: overwriting the
// bytes it covered afterwards does not copy the chunk they are in.
func TestMemCrossChunkViewHoldsNothing(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	for len(memChunks(f)) < 2 {
		_, err := f.Write(fill(100, 'a'))
		require.NoError(t, err)
	}
	cs := memChunks(f)
	end := cs[0][0] + cs[0][1] // the first chunk's end
	v, err := f.(Viewer).View(int64(end-10), 20)
	require.NoError(t, err)
	require.False(t, ownBytes(f, v), "a copy")
	first := f.(*memFile).n.chunks[0]
	before := unsafe.SliceData(first.buf)
	_, err = f.WriteAt([]byte("zz"), int64(end-5))
	require.NoError(t, err)
	require.Equal(t, before, unsafe.SliceData(first.buf), "the chunk was not copied")
	require.Equal(t, string(fill(20, 'a')), string(v))
}

// Trim gives back the room the last chunk has spare, and changes nothing
// else: the content, views taken before (which keep the old array), what
// a crash keeps, appends after it (into a new chunk), through WithFaults
// too; a file with little room to spare is left as it is.
func TestMemTrim(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	p := fill(100_000, 'x')
	for range 10 { // chunks of 100,000, 100,000, 200,000, 400,000 and 800,000, the last holding 200,000
		_, err := f.Write(p)
		require.NoError(t, err)
	}
	require.NoError(t, m.SyncDir("/"))
	require.NoError(t, f.Sync())
	require.EqualValues(t, 1_000_000, m.Usage())
	before := m.Allocated()
	require.Greater(t, before-m.Usage(), int64(400_000), "the last chunk's room")
	v, err := f.(Viewer).View(900_000, 100_000)
	require.NoError(t, err)
	require.True(t, ownBytes(f, v))
	chunks := memChunks(f)

	ops := 0
	ff, err := WithFaults(m, InjectorFunc(func(Op, string) error { ops++; return nil })).Open("/f")
	require.NoError(t, err)
	opened := ops
	ff.(Trimmer).Trim()
	require.Equal(t, opened, ops, "no operation for the injector")
	require.NoError(t, ff.Close())
	require.Equal(t, m.Usage(), m.Allocated(), "no room left")
	require.Equal(t, chunks, memChunks(f), "the same chunks, at the same places")
	require.False(t, ownBytes(f, v), "the view keeps the old array")
	require.Equal(t, p, v)
	require.Equal(t, strings.Repeat("x", 1_000_000), memRead(t, m, "/f"))
	require.Equal(t, strings.Repeat("x", 1_000_000), memRead(t, m.CrashClone(CrashOptions{Tail: TailDrop}), "/f"))

	f.(Trimmer).Trim() // nothing to give back
	require.Equal(t, m.Usage(), m.Allocated())
	memWrite(t, f, "yz")
	require.Len(t, memChunks(f), len(chunks)+1, "an append after it opens a chunk")
	require.Equal(t, strings.Repeat("x", 1_000_000)+"yz", memRead(t, m, "/f"))
	require.Equal(t, strings.Repeat("x", 1_000_000), memRead(t, m.CrashClone(CrashOptions{Tail: TailDrop}), "/f"), "not synced")

	g := memCreate(t, m, "/g")
	_, err = g.Write(fill(1000, 'g'))
	require.NoError(t, err)
	room := chunkRoom(g)
	g.(Trimmer).Trim()
	require.Equal(t, room, chunkRoom(g), "less than memTrimMin to spare: kept")
	require.NoError(t, g.Close())
	g.(Trimmer).Trim() // closed: nothing
	require.NoError(t, f.Close())
}

// Trim of a closed file does nothing, though its last chunk has much
// room to spare.
func TestMemTrimClosedDoesNothing(t *testing.T) {
	m := NewMem()
	f, err := m.Create("/f")
	require.NoError(t, err)
	_, err = f.Write(fill(70_000, 'x'))
	require.NoError(t, err)
	_, err = f.Write([]byte("y")) // opens a chunk as large as the file
	require.NoError(t, err)
	before := m.Allocated()
	require.Greater(t, before-m.Usage(), int64(memTrimMin), "room to give back")
	require.NoError(t, f.Close())
	f.(Trimmer).Trim()
	require.Equal(t, before, m.Allocated())
}

// A small file grows by moving to a larger array up to exactly
// memChunkGrow bytes: a file of that size is still one chunk, the whole
// of it one view.
func TestMemSmallFileUpToGrowIsOneChunk(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	_, err := f.Write(fill(1024, 'a'))
	require.NoError(t, err)
	_, err = f.Write(fill(memChunkGrow-1024, 'b'))
	require.NoError(t, err)
	require.Equal(t, [][2]int{{0, memChunkGrow}}, memChunks(f))
	v, err := f.(PrefixViewer).ViewPrefix(0, memChunkGrow)
	require.NoError(t, err)
	require.Len(t, v, memChunkGrow)
}

// Trim gives back a last chunk's room when it is exactly memTrimMin bytes
// and exactly a quarter of the chunk: both bounds are inclusive.
func TestMemTrimAtBothBounds(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	_, err := f.Write(fill(8192, 'a'))
	require.NoError(t, err)
	_, err = f.Write(fill(4096, 'b')) // moves to an array of 16384 bytes
	require.NoError(t, err)
	require.Equal(t, memTrimMin, chunkRoom(f))
	require.EqualValues(t, 4*memTrimMin, m.Allocated())
	f.(Trimmer).Trim()
	require.Zero(t, chunkRoom(f))
	require.EqualValues(t, 12288, m.Allocated())
	require.Equal(t, strings.Repeat("a", 8192)+strings.Repeat("b", 4096), memRead(t, m, "/f"))
}
