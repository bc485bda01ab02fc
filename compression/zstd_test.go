package compression

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"os/exec"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/leakcheck"
	"github.com/runnel/runnel/internal/testkit"
)

// zstdStream encodes src the way a streaming writer (such as the Java
// client's ZstdOutputStream) does: without the frame content size.
func zstdStream(t testing.TB, src []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	// Flushing before Close commits the header before the size is known.
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var h zstd.Header
	if err := h.Decode(buf.Bytes()); err != nil || h.HasFCS {
		t.Fatalf("streamed frame header: %+v, %v", h, err)
	}
	return buf.Bytes()
}

// TestZstdNoContentSize decodes frames that do not state their size, which
// makes the decoder guess and retry with a larger buffer.
func TestZstdNoContentSize(t *testing.T) {
	for _, in := range [][]byte{
		{1},
		recordLike(1000, 20),
		recordLike(200<<10, 21),
		make([]byte, 3<<20), // far beyond the first guess
		randomBytes(100<<10, 22),
	} {
		enc := zstdStream(t, in)
		for _, dst := range [][]byte{nil, []byte("p"), make([]byte, 0, len(in)), make([]byte, 2, 10)} {
			got := mustDecode(t, Zstd, dst, enc, 0)
			if !bytes.Equal(got[len(dst):], in) || !bytes.Equal(got[:len(dst)], dst) {
				t.Fatalf("%d bytes into dst of len %d cap %d: wrong output", len(in), len(dst), cap(dst))
			}
		}
		if out := mustDecode(t, Zstd, nil, enc, len(in)); len(out) != len(in) {
			t.Fatalf("exact limit: %d bytes", len(out))
		}
		if len(in) > 1 {
			_, err := Zstd.AppendDecode(nil, enc, len(in)-1)
			wantErr(t, err, ErrTooLarge, fmt.Sprintf("%d bytes, limit one less", len(in)))
		}
	}
}

func TestZstdMultipleFrames(t *testing.T) {
	a, b := recordLike(10<<10, 23), recordLike(300<<10, 24)
	enc := mustEncode(t, Zstd, nil, a)
	enc = mustEncode(t, Zstd, enc, []byte{})
	enc = append(enc, zstdStream(t, b)...)
	enc = mustEncode(t, Zstd, enc, a)
	want := append(append(bytes.Clone(a), b...), a...)
	if got := mustDecode(t, Zstd, nil, enc, 0); !bytes.Equal(got, want) {
		t.Fatal("concatenated frames decode wrong")
	}
	if got := mustDecode(t, Zstd, nil, enc, len(want)); !bytes.Equal(got, want) {
		t.Fatal("concatenated frames at exact limit decode wrong")
	}
	_, err := Zstd.AppendDecode(nil, enc, len(want)-1)
	wantErr(t, err, ErrTooLarge, "concatenated frames, limit one less")

	// A skippable frame in front is ignored.
	skip := binary.LittleEndian.AppendUint32(nil, 0x184D2A50)
	skip = binary.LittleEndian.AppendUint32(skip, 3)
	skip = append(skip, "abc"...)
	if got := mustDecode(t, Zstd, nil, append(skip, enc...), 0); !bytes.Equal(got, want) {
		t.Fatal("skippable frame not skipped")
	}
}

// zstdFrameClaiming returns a frame header that states content size fcs,
// followed by one small raw block: a lie whenever fcs is not 5.
func zstdFrameClaiming(fcs uint64) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	b = append(b, 0xC0|0x20)                     // FHD: 8-byte FCS, single segment
	b = binary.LittleEndian.AppendUint64(b, fcs) // content size
	b = append(b, 5<<3|1, 0, 0)                  // last raw block of 5 bytes
	return append(b, "hello"...)
}

func TestZstdLyingContentSize(t *testing.T) {
	if got := mustDecode(t, Zstd, nil, zstdFrameClaiming(5), 0); string(got) != "hello" {
		t.Fatalf("honest frame: %q", got)
	}
	for _, tc := range []struct {
		fcs  uint64
		want error
	}{
		{1 << 62, ErrTooLarge},
		{DefaultDecodeLimit + 1, ErrTooLarge},
		{DefaultDecodeLimit, ErrCorrupt}, // 22 bytes cannot decode to that much
		{1 << 20, ErrCorrupt},
		{6, ErrCorrupt},
		{4, ErrCorrupt},
	} {
		src := zstdFrameClaiming(tc.fcs)
		var err error
		alloc := allocatedBy(func() { _, err = Zstd.AppendDecode(nil, src, 0) })
		wantErr(t, err, tc.want, fmt.Sprintf("frame claiming %d bytes", tc.fcs))
		if alloc > 1<<20 {
			t.Errorf("frame claiming %d bytes made the decoder allocate %d bytes", tc.fcs, alloc)
		}
	}
}

// TestZstdFrameHeader pins the frames Zstd writes: the content size
// stated (above 1 KiB), no content checksum (the record batch's CRC-32C
// covers the payload, and the zstd library's default is none), a frame
// of less than a block (128 KiB) one single segment, and a larger one a
// window of the least power of two above its size, up to zstdWindow (1
// MiB): what a decoder must hold, no more than twice the batch. An empty
// frame is a single segment of size 0, as before zstd's encoders
// streamed, not one of unstated size with a window of 1 MiB.
func TestZstdFrameHeader(t *testing.T) {
	for _, n := range []int{0, 1, 4 << 10, 64 << 10, 64<<10 + 1, 128<<10 - 1, 128 << 10, 200 << 10, 1 << 20, 3 << 20} {
		in := recordLike(n, 90)
		enc := mustEncode(t, Zstd, nil, in)
		var h zstd.Header
		if err := h.Decode(enc); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if h.HasCheckSum {
			t.Errorf("%d bytes: frame has a content checksum", n)
		}
		// Up to zstd's minimum window (1 KiB) the size may be left out.
		if n > 1<<10 && (!h.HasFCS || h.FrameContentSize != uint64(n)) {
			t.Errorf("%d bytes: content size %d (stated: %v)", n, h.FrameContentSize, h.HasFCS)
		}
		switch window := min(uint64(1)<<bits.Len(uint(n)), zstdWindow); {
		case n == 0 && (!h.SingleSegment || !h.HasFCS || h.FrameContentSize != 0):
			t.Errorf("empty: window %d (single segment: %v), size %d (stated: %v)", h.WindowSize, h.SingleSegment, h.FrameContentSize, h.HasFCS)
		case n > 1<<10 && n < zstdMaxBlock && !h.SingleSegment:
			t.Errorf("%d bytes: window %d, not a single segment", n, h.WindowSize)
		case n >= zstdMaxBlock && (h.SingleSegment || h.WindowSize != window):
			t.Errorf("%d bytes: window %d (single segment: %v), want %d", n, h.WindowSize, h.SingleSegment, window)
		}
		if got := mustDecode(t, Zstd, nil, enc, 0); !bytes.Equal(got, in) {
			t.Errorf("%d bytes: wrong output", n)
		}
	}
}

// TestZstdEncodesOneAtATimeMakeOneEncoder: callers that encode one at a
// time make one encoder of a level, not one for each of its
// zstdConcurrency (each holds MiBs, 36 at levels 10 and up: see
// AppendEncodeLevel). Before, the level's encoders were taken in turn, so
// that a producer at level 22 on four cores held 146 MiB of encoders where
// 37 served. In a child process at GOMAXPROCS 4, so that the level's
// encoders are the test's alone: the heap after a second encode and more
// stays within one encoder's.
func TestZstdEncodesOneAtATimeMakeOneEncoder(t *testing.T) {
	if os.Getenv("RUNNEL_ZSTD_ONE_ENCODER_CHILD") == "1" {
		require.Equal(t, 4, zstdConcurrency)
		in := recordLike(2*zstdMaxBlock, 95) // the streaming path, every buffer used
		dst := make([]byte, 0, 2*len(in))
		encode := func() {
			_, err := Zstd.AppendEncodeLevel(dst, in, 1)
			require.NoError(t, err)
		}
		base := leakcheck.LiveHeap()
		encode()
		one := leakcheck.LiveHeap() - base
		for range 2 * zstdConcurrency {
			encode()
		}
		all := leakcheck.LiveHeap() - base
		t.Logf("the heap grew by %d bytes after one encode, by %d after %d more", one, all, 2*zstdConcurrency)
		require.Less(t, all, one+one/2, "encodes one at a time made more than one encoder")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestZstdEncodesOneAtATimeMakeOneEncoder$", "-test.v", "-test.timeout", "10m")
	cmd.Env = append(os.Environ(), "RUNNEL_ZSTD_ONE_ENCODER_CHILD=1", "GOMAXPROCS=4")
	out, err := cmd.CombinedOutput()
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, err, "the child failed:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestZstdEncodesOneAtATimeMakeOneEncoder", "%s", out)
}

// TestZstdPoolHoldsConcurrencyEncoders: each level's pool lets
// zstdConcurrency encodes run at once, each with an encoder of its own,
// and no more: with one, every zstd encode of the process at that level
// would wait for the one before.
func TestZstdPoolHoldsConcurrencyEncoders(t *testing.T) {
	for level := zstd.SpeedFastest; level <= zstd.SpeedBestCompression; level++ {
		p := &zstdPools[level]
		var taken []*zstdEncoder
		for range zstdConcurrency {
			require.Positive(t, len(p.free)+len(p.room), "%v: a get would wait with %d encoders out", level, len(taken))
			e := p.get()
			for _, o := range taken {
				require.NotSame(t, o, e, "%v: an encoder handed out twice", level)
			}
			taken = append(taken, e)
		}
		require.Zero(t, len(p.free)+len(p.room), "%v: a get with %d encoders out would not wait", level, len(taken))
		for _, e := range taken {
			p.put(e)
		}
	}
}

// zstdRLEFrame returns a frame of n RLE blocks of zstdMaxBlock bytes each,
// four bytes a block: the densest input there is, at the bound
// zstdMaxDecoded assumes.
func zstdRLEFrame(n int) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 0xFD2FB528)
	b = append(b, 0xC0|0x20) // FHD: 8-byte content size, single segment
	b = binary.LittleEndian.AppendUint64(b, uint64(n)*zstdMaxBlock)
	for i := range n {
		h := uint32(zstdMaxBlock)<<3 | 1<<1 // an RLE block
		if i == n-1 {
			h |= 1 // last
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 'z')
	}
	return b
}

// TestZstdDensestFrame: a frame at the densest ratio zstd allows is not
// taken for one that lies about its size.
func TestZstdDensestFrame(t *testing.T) {
	const n = 16
	out := mustDecode(t, Zstd, nil, zstdRLEFrame(n), 0)
	if len(out) != n*zstdMaxBlock || bytes.Count(out, []byte{'z'}) != len(out) {
		t.Fatalf("decoded %d bytes, want %d bytes of 'z'", len(out), n*zstdMaxBlock)
	}
}

// TestZstdLaterFrameLargerThanRoom: in concatenated frames that state
// their sizes, only the first sizes the room; a later, larger frame does
// not fit, which the decoder reports with little output, and which is a
// reason to retry with more room, not corruption.
func TestZstdLaterFrameLargerThanRoom(t *testing.T) {
	small, large := []byte("tiny"), recordLike(600<<10, 65)
	enc := mustEncode(t, Zstd, nil, small)
	enc = mustEncode(t, Zstd, enc, large)
	want := append(bytes.Clone(small), large...)
	out := mustDecode(t, Zstd, make([]byte, 0, 300<<10), enc, 0)
	if !bytes.Equal(out, want) {
		t.Fatal("concatenated frames decode wrong")
	}
}

// TestZstdStreamLimitWithSpareDst: a frame that does not state its size is
// held to the limit even when dst has spare capacity far beyond it, for
// every codec; and a small one is decoded into a modest first guess, not
// the most its input could decode to.
func TestZstdStreamLimitWithSpareDst(t *testing.T) {
	in := recordLike(10<<10, 67)
	for _, c := range allCodecs {
		enc := mustEncode(t, c, nil, in)
		if c == Zstd {
			enc = zstdStream(t, in)
		}
		_, err := c.AppendDecode(make([]byte, 0, 1<<20), enc, 1000)
		wantErr(t, err, ErrTooLarge, c.String()+", 10 KiB with limit 1000 and 1 MiB of spare dst")
	}

	small := zstdStream(t, recordLike(1<<10, 68))
	mustDecode(t, Zstd, nil, small, 0) // warm the decoder
	alloc := allocatedBy(func() { mustDecode(t, Zstd, nil, small, 0) })
	if alloc > 256<<10 {
		t.Errorf("a %d-byte frame without its size: %d bytes allocated", len(small), alloc)
	}
}
