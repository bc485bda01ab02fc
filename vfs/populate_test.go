package vfs

import (
	"bytes"
	"fmt"
	"io"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPopulateKeepsBytes: populate changes no byte of what it is given,
// nor of what lies around it, whatever the alignment of its start and
// end, and takes empty and sub-page slices.
func TestPopulateKeepsBytes(t *testing.T) {
	b := make([]byte, 3<<20+123)
	for i := range b {
		b[i] = byte(i*7 + i>>12)
	}
	want := bytes.Clone(b)
	for _, r := range [][2]int{{0, 0}, {5, 6}, {100, 4000}, {100, 2<<20 + 77}, {4096, 8192}, {0, len(b)}, {len(b) - 10, len(b)}} {
		populate(b[r[0]:r[1]])
		require.Equal(t, want, b, "populate of [%d, %d)", r[0], r[1])
	}
	// Past the slice's length, within its capacity: as ready populates a
	// chunk's array beyond what it holds.
	s := b[:10]
	populate(s[5:cap(s)])
	require.Equal(t, want, b)
}

// TestMemChunkReady: a chunk of memChunkGrow bytes or more is populated
// a step ahead of its appends, never past its array; a smaller one never.
func TestMemChunkReady(t *testing.T) {
	c := newChunk(0, 4<<20)
	c.ready(10)
	require.Equal(t, memPopulateStep, c.populated)
	c.buf = append(c.buf, make([]byte, memPopulateStep-10)...)
	c.ready(10) // within what is populated
	require.Equal(t, memPopulateStep, c.populated)
	c.ready(11) // one byte past it
	require.Equal(t, 2*memPopulateStep, c.populated)
	c.ready(3 << 20) // a write larger than a step: all of it
	require.Equal(t, len(c.buf)+3<<20, c.populated)
	c.ready(4<<20 - len(c.buf)) // up to the end of the array, not past it
	require.Equal(t, 4<<20, c.populated)

	small := newChunk(0, memChunkGrow-1)
	small.ready(100)
	require.Zero(t, small.populated)
}

// TestMemFSPopulatedAppends: a file written in appends of many sizes,
// across populate steps and chunks, with a view held of its first
// bytes meanwhile, reads back as written, and the view is unchanged.
func TestMemFSPopulatedAppends(t *testing.T) {
	fsys := NewMem()
	f, err := fsys.Create("f")
	require.NoError(t, err)
	defer f.Close()
	var want []byte
	var view []byte
	for i := 0; len(want) < 9<<20; i++ {
		p := bytes.Repeat([]byte{byte(i)}, 1+(i*7919)%(300<<10))
		_, err := f.Write(p)
		require.NoError(t, err)
		want = append(want, p...)
		if i == 3 {
			view, err = ReadView(f, 0, len(want))
			require.NoError(t, err)
		}
	}
	got, err := io.ReadAll(io.NewSectionReader(f, 0, int64(len(want))))
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "the file reads back as written")
	require.True(t, bytes.Equal(want[:len(view)], view), "the view is unchanged")
}

// BenchmarkMemFreshWrite writes 64 MiB to a new MemFS file in 16 KiB
// writes (a record batch's size), on memory the Go runtime has just given
// back to the OS (debug.FreeOSMemory, outside the timer): every page is
// first touched by the write, as when an in-memory log grows. populate=off
// leaves each page to fault in as it is first written; populate=on is what
// MemFS does (see memPopulateStep). Compare with
//
//	go test -run '^$' -bench MemFreshWrite -count 6 ./vfs
func BenchmarkMemFreshWrite(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(fmt.Sprintf("populate=%s", map[bool]string{false: "off", true: "on"}[on]), func(b *testing.B) {
			was := populateBroken.Load()
			populateBroken.Store(!on)
			defer populateBroken.Store(was)
			const total, write = 64 << 20, 16 << 10
			p := bytes.Repeat([]byte{0xa5}, write)
			b.SetBytes(total)
			for b.Loop() {
				b.StopTimer()
				debug.FreeOSMemory()
				f, err := NewMem().Create("f")
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for range total / write {
					if _, err := f.Write(p); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// TestMemChunkUnsharePopulates: a chunk given a new array by unshare
// populates that array's room again as appends reach it, rather than
// take the old array's mark for the new one.
func TestMemChunkUnsharePopulates(t *testing.T) {
	c := newChunk(0, 1<<20)
	c.ready(100)
	c.buf = append(c.buf, make([]byte, 100)...)
	require.Equal(t, memPopulateStep, c.populated)
	c.unshare()
	require.Equal(t, 100, c.populated, "the new array: what the copy wrote")
	c.ready(10)
	require.Equal(t, 100+memPopulateStep, c.populated)
}
