package compression

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"runtime/debug"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"

	"github.com/runnel/runnel/internal/testkit"
)

// zstdAll encodes src with EncodeAll, which states the content size, with
// opts.
func zstdAll(t *testing.T, src []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(src, nil)
}

// lz4BlockSums encodes src as one lz4 frame of 64 KiB blocks, each with
// its checksum (which runnel's encoder does not write).
func lz4BlockSums(t *testing.T, src []byte) []byte {
	return lz4Frame(t, src, lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true), lz4.ConcurrencyOption(1))
}

// TestReaderWholeAtItsBounds: which inputs a Reader decodes whole (Whole
// says ok) and which it streams, at each bound the Reader's doc names:
// lz4 frames whose blocks hold at most 1 MiB, exactly and a block over
// (also with block checksums, which the count of blocks skips); a zstd
// frame of a single segment; a stated size of 1 MiB and of the window
// and two blocks, exactly and one byte over; an unsized frame that fits
// 1 MiB. Either way the bytes are AppendDecode's.
func TestReaderWholeAtItsBounds(t *testing.T) {
	src := recordLike(3<<20, 47)
	for _, tc := range []struct {
		name  string
		c     Codec
		data  []byte
		whole bool
	}{
		{"lz4 16 blocks of 64 KiB", LZ4, mustEncode(t, LZ4, nil, src[:1<<20]), true},
		{"lz4 17 blocks of 64 KiB", LZ4, mustEncode(t, LZ4, nil, src[:1<<20+1]), false},
		{"lz4 frames of 512 KiB and 576 KiB", LZ4, mustEncode(t, LZ4, mustEncode(t, LZ4, nil, src[:512<<10]), src[:576<<10]), false},
		{"lz4 16 blocks with checksums", LZ4, lz4BlockSums(t, src[:1<<20]), true},
		{"lz4 32 blocks with checksums", LZ4, lz4BlockSums(t, src[:2<<20]), false},
		{"zstd single segment of 3 MiB", Zstd, zstdAll(t, src), true},
		{"zstd 1 MiB stated, window 256 KiB", Zstd, zstdAll(t, src[:1<<20], zstd.WithWindowSize(256<<10), zstd.WithSingleSegment(false)), true},
		{"zstd 1 MiB + 1 stated, window 256 KiB", Zstd, zstdAll(t, src[:1<<20+1], zstd.WithWindowSize(256<<10), zstd.WithSingleSegment(false)), false},
		{"zstd window and two blocks stated", Zstd, zstdAll(t, src[:1<<20+256<<10], zstd.WithWindowSize(1<<20), zstd.WithSingleSegment(false)), true},
		{"zstd window and two blocks + 1 stated", Zstd, zstdAll(t, src[:1<<20+256<<10+1], zstd.WithWindowSize(1<<20), zstd.WithSingleSegment(false)), false},
		{"zstd unsized 200 KiB", Zstd, zstdStream(t, src[:200<<10]), true},
		{"zstd unsized 1 MiB + 1", Zstd, zstdStream(t, src[:1<<20+1], zstd.WithWindowSize(256<<10)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.c.NewReader(tc.data, 0)
			out, ok := r.Whole()
			if ok != tc.whole {
				r.Close()
				t.Fatalf("Whole says %v, want %v", ok, tc.whole)
			}
			want := mustDecode(t, tc.c, nil, tc.data, 0)
			if !ok {
				var err error
				if out, err = readAll(r, 64<<10); err != nil {
					t.Fatal(err)
				}
			} else {
				out = bytes.Clone(out)
				r.Close()
			}
			if !bytes.Equal(out, want) {
				t.Fatalf("read %d bytes, AppendDecode %d, or different ones", len(out), len(want))
			}
		})
	}
}

// TestReaderWholeNotOnceRead: Whole is ok only before anything is read, as
// its doc says.
func TestReaderWholeNotOnceRead(t *testing.T) {
	r := LZ4.NewReader(mustEncode(t, LZ4, nil, []byte("one record")), 0)
	defer r.Close()
	if _, ok := r.Whole(); !ok {
		t.Fatal("a small lz4 frame is not decoded whole")
	}
	var p [3]byte
	if n, err := r.Read(p[:]); n != 3 || err != nil {
		t.Fatalf("Read: %d, %v", n, err)
	}
	if out, ok := r.Whole(); ok {
		t.Fatalf("Whole after a Read of 3 bytes: %q, ok", out)
	}
}

// readAllocs reads data with a Reader to its end, and returns the bytes
// the Reader allocated and its error (nil at io.EOF).
func readAllocs(c Codec, data []byte) (alloc uint64, n int, err error) {
	buf := make([]byte, 64<<10)
	alloc = allocatedBy(func() {
		r := c.NewReader(data, 0)
		for err == nil {
			var k int
			k, err = r.Read(buf)
			n += k
		}
		r.Close()
	})
	if err == io.EOF {
		err = nil
	}
	return alloc, n, err
}

// TestReaderStreamsWhatFails: input that fails once streamed is not
// decoded whole for it, but for a zstd frame (whose verdict needs it):
// lz4 frames that the count of blocks cannot walk (the last one cut
// short), a gzip stream whose checksum is wrong, a zstd stream over the
// limit (the verdict is ErrTooLarge, found streaming). Each reads 16 or
// 64 MiB and allocates a window's worth.
func TestReaderStreamsWhatFails(t *testing.T) {
	zeros := make([]byte, DefaultDecodeLimit+1)
	lz := mustEncode(t, LZ4, nil, zeros[:16<<20])
	gz := mustEncode(t, Gzip, nil, zeros[:16<<20])
	gz[len(gz)-8] ^= 1 // the CRC-32
	for _, tc := range []struct {
		name  string
		c     Codec
		data  []byte
		want  error
		bound uint64
	}{
		{"lz4 cut short", LZ4, lz[:len(lz)-5], ErrCorrupt, 2 << 20},
		{"gzip checksum", Gzip, gz, ErrCorrupt, 2 << 20},
		// 1 MiB tried whole, then a window of 1 MiB and two blocks.
		{"zstd unsized over the limit", Zstd, zstdStream(t, zeros, zstd.WithWindowSize(1<<20)), ErrTooLarge, 8 << 20},
	} {
		// The shared decoders are built once a process, not per call.
		if _, _, err := readAllocs(tc.c, tc.data); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		alloc, n, err := readAllocs(tc.c, tc.data)
		if !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %v", tc.name, err, tc.want)
		}
		t.Logf("%s: %d bytes read, %.2f MB allocated", tc.name, n, float64(alloc)/1e6)
		if alloc > tc.bound {
			t.Errorf("%s: reading allocated %d bytes, more than %d: decoded whole", tc.name, alloc, tc.bound)
		}
	}
}

// TestReaderZstdWindowOf8MiBStreams: an unsized zstd frame of an 8 MiB
// window (the most a Reader streams) is streamed: 24 MiB read allocate
// the window and two blocks at most, not the output.
func TestReaderZstdWindowOf8MiBStreams(t *testing.T) {
	data := zstdStream(t, make([]byte, 24<<20), zstd.WithWindowSize(8<<20))
	var h zstd.Header
	if err := h.Decode(data); err != nil || h.WindowSize != 8<<20 {
		t.Fatalf("header %+v, %v", h, err)
	}
	readAllocs(Zstd, data) // fills the pools
	alloc, n, err := readAllocs(Zstd, data)
	if err != nil || n != 24<<20 {
		t.Fatalf("read %d bytes, %v", n, err)
	}
	t.Logf("%.2f MB allocated", float64(alloc)/1e6)
	if alloc > 16<<20 {
		t.Errorf("reading allocated %d bytes, more than 16 MiB: decoded whole", alloc)
	}
}

// TestReaderZstdSecondFrameOverTheStreamWindow: two zstd frames, the
// second of a 16 MiB window, which the streaming decoder refuses and
// AppendDecode takes: the Reader decodes whole after the first frame is
// streamed, and serves the rest of the output from where the stream
// stopped, the bytes AppendDecode gives, in reads of several sizes.
func TestReaderZstdSecondFrameOverTheStreamWindow(t *testing.T) {
	src := recordLike(2<<20, 471)
	data := zstdStream(t, src[:1536<<10], zstd.WithWindowSize(256<<10))
	data = append(data, zstdStream(t, src[1536<<10:], zstd.WithWindowSize(16<<20))...)
	for _, rs := range []int{999, 64 << 10, 1 << 20, 4 << 20} {
		checkReader(t, Zstd, data, 0, rs)
	}
}

// TestReaderZstdClaimsTooMuchOverTheLimit: a zstd frame that states a
// size over the limit and more than its bytes could decode to is refused
// as too large, AppendDecode's verdict (its first check).
// (FuzzReaderMatchesDecode finds the mutant this test kills in a
// minute, in -short.)
func TestReaderZstdClaimsTooMuchOverTheLimit(t *testing.T) {
	// Magic, a single segment with an 8-byte content size, then one empty
	// last raw block.
	frame := binary.LittleEndian.AppendUint32(nil, 0xfd2fb528)
	frame = append(frame, 0xe0)
	frame = binary.LittleEndian.AppendUint64(frame, 1<<40)
	frame = append(frame, 0x01, 0x00, 0x00)
	checkReader(t, Zstd, frame, 0, 64<<10)
	_, err := readAll(Zstd.NewReader(frame, 0), 64<<10)
	wantErr(t, err, ErrTooLarge, "a frame claiming 1 TiB")
}

// TestReaderZstdClaimRefusedUnread: a zstd frame of 16 bytes that states
// a size within the limit but more than its bytes could decode to is
// refused before anything is allocated for that size.
func TestReaderZstdClaimRefusedUnread(t *testing.T) {
	// Magic, a single segment with an 8-byte content size of 60 MiB,
	// then one empty last raw block.
	frame := binary.LittleEndian.AppendUint32(nil, 0xfd2fb528)
	frame = append(frame, 0xe0)
	frame = binary.LittleEndian.AppendUint64(frame, 60<<20)
	frame = append(frame, 0x01, 0x00, 0x00)
	readAllocs(Zstd, frame) // fills the pools
	alloc, _, err := readAllocs(Zstd, frame)
	wantErr(t, err, ErrCorrupt, "a frame of 16 bytes claiming 60 MiB")
	if alloc > 1<<20 {
		t.Fatalf("refusing the frame allocated %d bytes, more than 1 MiB: room for the claim", alloc)
	}
}

// TestReaderDecodersPooled: a Reader that streams takes its decoders from
// their pools and puts them back: reading a gzip, lz4 or xerial stream
// again allocates almost nothing, and a small lz4 frame decoded whole
// nothing (the least of three tries, with the collector off, as a pool
// may lose an item to a collection or to the goroutine's move to another
// P). A zstd stream's decoder is made per Reader, not pooled (see
// newZstdStreamer): it allocates its window (1 MiB here) and two blocks,
// and a little more, not the 3 MiB it decodes.
func TestReaderDecodersPooled(t *testing.T) {
	if testkit.RaceEnabled {
		t.Skip("the race detector drops pooled items at random")
	}
	src := recordLike(3<<20, 472)
	inputs := []struct {
		name string
		c    Codec
		data []byte
	}{
		{"gzip", Gzip, mustEncode(t, Gzip, nil, src)},
		{"lz4", LZ4, mustEncode(t, LZ4, nil, src)},
		{"lz4 small", LZ4, mustEncode(t, LZ4, nil, src[:1000])},
		{"xerial", Snappy, xerialStream(src[:1<<20], src[1<<20:])},
		{"zstd", Zstd, zstdAll(t, src, zstd.WithWindowSize(1<<20), zstd.WithSingleSegment(false))},
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, tc := range inputs {
		buf := make([]byte, 64<<10)
		read := func() {
			r := tc.c.NewReader(tc.data, 0)
			for {
				if _, err := r.Read(buf); err != nil {
					if err != io.EOF {
						t.Fatal(err)
					}
					break
				}
			}
			r.Close()
		}
		read()
		allocs, bytes := math.Inf(1), uint64(math.MaxUint64)
		for range 3 {
			allocs = min(allocs, testing.AllocsPerRun(10, read))
			bytes = min(bytes, allocatedBy(func() {
				for range 10 {
					read()
				}
			})/10)
		}
		t.Logf("%s: %.1f allocations, %d bytes a read", tc.name, allocs, bytes)
		if tc.c == Zstd {
			if bytes > 2<<20 {
				t.Errorf("%s: a read allocates %d bytes, more than its window and blocks", tc.name, bytes)
			}
			continue
		}
		if allocs > 2 || bytes > 1<<10 {
			t.Errorf("%s: a read allocates %.1f times, %d bytes, more than twice or 1 KiB: a decoder not from its pool", tc.name, allocs, bytes)
		}
	}
}

// TestReadersApart: once a Reader of each codec's stream is closed,
// two Readers open at once have decoders of their own: read in turns,
// each gives its own input's bytes (a decoder or a Reader put back in its
// pool twice would serve both).
func TestReadersApart(t *testing.T) {
	a, b := recordLike(1536<<10, 473), recordLike(1536<<10, 474)
	for _, tc := range []struct {
		name string
		c    Codec
		enc  func([]byte) []byte
	}{
		{"gzip", Gzip, func(src []byte) []byte { return mustEncode(t, Gzip, nil, src) }},
		{"lz4", LZ4, func(src []byte) []byte { return mustEncode(t, LZ4, nil, src) }},
		{"xerial", Snappy, func(src []byte) []byte { return xerialStream(src[:1<<20], src[1<<20:]) }},
		{"zstd", Zstd, func(src []byte) []byte {
			return zstdAll(t, src, zstd.WithWindowSize(1<<20), zstd.WithSingleSegment(false))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			da, db := tc.enc(a), tc.enc(b)
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			if _, err := readAll(tc.c.NewReader(da, 0), 64<<10); err != nil {
				t.Fatal(err)
			}
			ra, rb := tc.c.NewReader(da, 0), tc.c.NewReader(db, 0)
			defer ra.Close()
			defer rb.Close()
			var outA, outB []byte
			p := make([]byte, 64<<10)
			for doneA, doneB := false, false; !doneA || !doneB; {
				for _, x := range []struct {
					r    *Reader
					out  *[]byte
					done *bool
				}{{ra, &outA, &doneA}, {rb, &outB, &doneB}} {
					if *x.done {
						continue
					}
					n, err := x.r.Read(p)
					*x.out = append(*x.out, p[:n]...)
					if err == io.EOF {
						*x.done = true
					} else if err != nil {
						t.Fatal(err)
					}
				}
			}
			if !bytes.Equal(outA, a) || !bytes.Equal(outB, b) {
				t.Fatalf("two Readers read in turns gave %d and %d bytes, or other bytes than their inputs' (%d, %d)", len(outA), len(outB), len(a), len(b))
			}
		})
	}
}

// TestReaderPoolKeepsNoLargeBuffer: a Reader that decoded 8 MiB whole, or
// streamed xerial chunks of 5 MiB, goes back to its pool without them
// (buffers above 4 MiB are dropped).
func TestReaderPoolKeepsNoLargeBuffer(t *testing.T) {
	if testkit.RaceEnabled {
		t.Skip("the race detector drops pooled items at random")
	}
	src := recordLike(10<<20, 475)
	inputs := []struct {
		name string
		c    Codec
		data []byte
	}{
		{"zstd single segment", Zstd, zstdAll(t, src[:8<<20])},
		{"xerial", Snappy, xerialStream(src[:5<<20], src[5<<20:])},
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	for _, tc := range inputs {
		if _, err := readAll(tc.c.NewReader(tc.data, 0), 64<<10); err != nil {
			t.Fatal(err)
		}
		r := readers.Get().(*Reader)
		bufCap, chunkCap := cap(r.buf), cap(r.chunk)
		readers.Put(r)
		if bufCap > 4<<20 || chunkCap > 4<<20 {
			t.Errorf("%s: the pooled Reader keeps buffers of %d and %d bytes, more than 4 MiB", tc.name, bufCap, chunkCap)
		}
	}
}
