package compression

// Tests that close gaps found by mutation testing: each fails against a
// mutant of the package that its other tests let through. They are in the
// package itself, like its other tests, to reach readAppend and the lz4
// frame walkers.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/pierrec/lz4/v4"
)

// TestDecodeCapWithinLimit: the output buffer never grows past the limit,
// even when the limit is exactly the decoded size and smaller than the
// decoders' smallest growth step. (None is left out: it is append, whose
// capacity rounds up to a size class.)
func TestDecodeCapWithinLimit(t *testing.T) {
	in := recordLike(1000, 60)
	for _, c := range packed {
		enc := mustEncode(t, c, nil, in)
		out := mustDecode(t, c, nil, enc, len(in))
		if !bytes.Equal(out, in) {
			t.Fatalf("%v: decoded wrong", c)
		}
		if cap(out) > len(in) {
			t.Errorf("%v: cap %d past the limit %d", c, cap(out), len(in))
		}
	}
}

// TestDecodeMaxLimitAfterDst: a limit of math.MaxInt with a non-empty dst
// is cut to what len(dst)+limit can hold, rather than overflowing into a
// limit that refuses everything.
func TestDecodeMaxLimitAfterDst(t *testing.T) {
	in := recordLike(10<<10, 61)
	for _, c := range allCodecs {
		enc := mustEncode(t, c, nil, in)
		out := mustDecode(t, c, []byte("prefix"), enc, math.MaxInt)
		if string(out[:6]) != "prefix" || !bytes.Equal(out[6:], in) {
			t.Fatalf("%v: decoded wrong", c)
		}
	}
}

// stuckReader returns neither data nor an error, up to a bound past which
// it fails, so that a reader loop without a stall guard ends quickly.
type stuckReader struct{ reads int }

var errStillReading = errors.New("still reading after 10000 empty reads")

func (r *stuckReader) Read([]byte) (int, error) {
	if r.reads++; r.reads > 10000 {
		return 0, errStillReading
	}
	return 0, nil
}

// TestReadAppendStall: readAppend gives up on a reader that makes no
// progress, after a bounded number of empty reads.
func TestReadAppendStall(t *testing.T) {
	var probe [1]byte
	for _, dst := range [][]byte{nil, make([]byte, 0, 16)} {
		r := new(stuckReader)
		_, err := readAppend(dst, r, 100, 0, &probe)
		if !errors.Is(err, errNoProgress) {
			t.Fatalf("cap %d: got %v after %d reads, want errNoProgress", cap(dst), err, r.reads)
		}
	}
}

// TestLZ4ShortInputs: inputs that end inside a skippable frame's header, or
// inside a frame header that declares a content size, are corrupt: the
// frame walker must not read past them.
func TestLZ4ShortInputs(t *testing.T) {
	skippable := binary.LittleEndian.AppendUint32([]byte{0x50, 0x2a, 0x4d, 0x18}, 3)
	sized := lz4Frame(t, recordLike(1000, 62), lz4.SizeOption(1000))
	inputs := map[string][]byte{}
	for n := 5; n < 8; n++ {
		inputs[fmt.Sprintf("skippable header of %d bytes", n)] = skippable[:n]
	}
	for n := 8; n < 15; n++ {
		inputs[fmt.Sprintf("sized frame header of %d bytes", n)] = sized[:n]
	}
	for name, src := range inputs {
		if lz4Independent(src) {
			t.Errorf("%s: taken for independent blocks", name)
		}
		_, err := LZ4.AppendDecode(nil, src, 0)
		wantErr(t, err, ErrCorrupt, name)
	}
}

// TestLZ4IndependentHeaders: the frame walker steps over a dictionary id
// in the header and a skippable frame that ends the input exactly.
func TestLZ4IndependentHeaders(t *testing.T) {
	ours := mustEncode(t, LZ4, nil, recordLike(1000, 63))
	dict := []byte{0x04, 0x22, 0x4d, 0x18, 0x40 | lz4FlagIndep | lz4FlagDictID, 0x40, 0, 0, 0, 0}
	dict = append(dict, lz4HeaderChecksum(dict[4:]))
	dict = append(dict, lz4Stored("abc")...)
	dict = binary.LittleEndian.AppendUint32(dict, 0) // end mark
	skipLast := append(bytes.Clone(ours), 0x5f, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 'a', 'b', 'c')
	for name, src := range map[string][]byte{"dictionary id": dict, "skippable last": skipLast} {
		if !lz4Independent(src) {
			t.Errorf("%s: not taken for independent blocks", name)
		}
	}

	// A legacy frame (whose blocks the reader treats as dependent) with a
	// block size of 0x60, whose bytes after the magic would also walk as a
	// frame of independent blocks: FLG 0x60, BD and header checksum, an
	// end mark, then a skippable frame to the end. Only the magic tells.
	legacy := []byte{0x02, 0x21, 0x4c, 0x18, 0x60, 0, 0, 0, 0, 0, 0}
	legacy = binary.LittleEndian.AppendUint32(legacy, lz4SkippableMagic)
	legacy = binary.LittleEndian.AppendUint32(legacy, 85)
	legacy = append(legacy, make([]byte, 85)...)
	if len(legacy) != 8+0x60 {
		t.Fatalf("legacy frame of %d bytes", len(legacy))
	}
	if lz4Independent(legacy) {
		t.Error("legacy frame: taken for independent blocks")
	}
}

// TestLZ4SizeHint: the hint is the content size a frame states, else four
// times the input; the content checksum flag is not the size flag.
func TestLZ4SizeHint(t *testing.T) {
	in := recordLike(100<<10, 64)
	sized := lz4Frame(t, in, lz4.SizeOption(uint64(len(in))))
	if got := lz4SizeHint(sized, DefaultDecodeLimit); got != len(in) {
		t.Errorf("frame stating its size: hint %d, want %d", got, len(in))
	}
	// As older runnel wrote: a content checksum, no size.
	summed := lz4Frame(t, in, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true))
	if summed[4]&lz4FlagContentSum == 0 || summed[4]&lz4FlagSize != 0 {
		t.Fatalf("FLG %#x: want a content checksum and no size", summed[4])
	}
	if got := lz4SizeHint(summed, DefaultDecodeLimit); got != 4*len(summed) {
		t.Errorf("frame without a size: hint %d, want %d", got, 4*len(summed))
	}
}

// TestSnappyClaimTooLargeForInt: a block that claims 2 GiB is ErrTooLarge
// on every platform: on 32-bit ones the library itself refuses it as too
// large for an int, which must not turn into ErrCorrupt.
func TestSnappyClaimTooLargeForInt(t *testing.T) {
	block := binary.AppendUvarint(nil, 1<<31)
	block = append(block, 0, 'x')
	_, err := Snappy.AppendDecode(nil, block, 0)
	wantErr(t, err, ErrTooLarge, "block claiming 2 GiB")
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

var _ io.Reader = (*stuckReader)(nil)

// TestDecodeCauseKept: a stream decoder's error reaches the caller
// wrapped, so that errors.Is finds the library's error as well as
// ErrCorrupt, even when the decoder reports it after output.
func TestDecodeCauseKept(t *testing.T) {
	enc := mustEncode(t, Gzip, nil, recordLike(10<<10, 66))
	enc[len(enc)-8] ^= 0xff // the trailer's CRC-32
	_, err := Gzip.AppendDecode(nil, enc, 0)
	wantErr(t, err, ErrCorrupt, "gzip stream with a bad CRC")
	wantErr(t, err, gzip.ErrChecksum, "gzip stream with a bad CRC")
}

// TestDecodeNotCompressed: input that is not in the codec's format at all
// is corrupt, not too large, and zstd finds so from the frame header,
// before it allocates room for an output.
func TestDecodeNotCompressed(t *testing.T) {
	src := []byte("this is not compressed data, and it is not short either")
	for _, c := range packed {
		_, _ = c.AppendDecode(nil, mustEncode(t, c, nil, src), 0) // warm the decoders
		var err error
		alloc := allocatedBy(func() { _, err = c.AppendDecode(nil, src, 0) })
		wantErr(t, err, ErrCorrupt, c.String())
		if errors.Is(err, ErrTooLarge) {
			t.Errorf("%v: %v, want no ErrTooLarge", c, err)
		}
		if c == Zstd && alloc > 16<<10 {
			t.Errorf("zstd: %d bytes allocated to refuse %d bytes without a frame header", alloc, len(src))
		}
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

// TestLZ4SkippableOnePastTheEnd: a skippable frame whose size claims one
// byte more than the input holds is corrupt, not a panic.
func TestLZ4SkippableOnePastTheEnd(t *testing.T) {
	src := binary.LittleEndian.AppendUint32([]byte{0x50, 0x2a, 0x4d, 0x18}, 4)
	src = append(src, "abc"...)
	if lz4Independent(src) {
		t.Error("taken for independent blocks")
	}
	_, err := LZ4.AppendDecode(nil, src, 0)
	wantErr(t, err, ErrCorrupt, "skippable frame of 4 bytes with 3 left")
}

// TestParseCodecCaseSensitive: no spelling but the lower-case one is a
// codec's name, not even a capitalized one.
func TestParseCodecCaseSensitive(t *testing.T) {
	for _, s := range []string{"None", "Gzip", "Snappy", "Lz4", "LZ4", "Zstd", "gziP"} {
		c, err := ParseCodec(s)
		wantErr(t, err, ErrUnknownCodec, fmt.Sprintf("ParseCodec(%q) = %v", s, c))
	}
}

// TestEncodedFormats: what the encoders write, beyond being decodable:
// every codec compresses (gzip at a real level, not stored blocks), and
// lz4 writes frames of independent 64 KiB blocks without a content checksum,
// as Kafka's Java client does (the batch's CRC-32C covers the payload).
func TestEncodedFormats(t *testing.T) {
	in := recordLike(64<<10, 69)
	for _, c := range packed {
		if enc := mustEncode(t, c, nil, in); len(enc) > len(in)/2 {
			t.Errorf("%v: %d bytes of records compressed to %d", c, len(in), len(enc))
		}
	}

	enc := mustEncode(t, LZ4, nil, in)
	if flg, bd := enc[4], enc[5]; flg&lz4FlagIndep == 0 || flg&lz4FlagContentSum != 0 || flg&lz4FlagBlockSum != 0 || bd != 0x40 {
		t.Errorf("lz4 FLG %#x BD %#x: want independent blocks, no content or block checksum, 64 KiB blocks", flg, bd)
	}
	// The Java writer's exact header: FLG version 1 and independent
	// blocks only, BD 64 KiB, and the header checksum over the two.
	if want := []byte{0x04, 0x22, 0x4d, 0x18, 0x60, 0x40, lz4HeaderChecksum([]byte{0x60, 0x40})}; !bytes.Equal(enc[:7], want) {
		t.Errorf("lz4 header % x, want % x", enc[:7], want)
	}
	// Blocks, then the end mark, and nothing after it.
	if n, ok := lz4FrameLen(enc); !ok || n != len(enc) || !bytes.Equal(enc[n-4:], []byte{0, 0, 0, 0}) {
		t.Errorf("lz4 frame of %d bytes walks to %d (%v), ends % x", len(enc), n, ok, enc[len(enc)-4:])
	}
}
