package compression

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// lz4Frame encodes src with a fresh writer and the given options.
func lz4Frame(t testing.TB, src []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestLZ4FrameVariants decodes frames written with other settings than ours:
// the library's defaults (4 MiB blocks), the Java client's (64 KiB blocks, no
// checksums), block checksums, and a stated content size.
func TestLZ4FrameVariants(t *testing.T) {
	in := recordLike(300<<10, 50)
	for name, opts := range map[string][]lz4.Option{
		"defaults":     nil,
		"java-like":    {lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)},
		"block sums":   {lz4.BlockSizeOption(lz4.Block256Kb), lz4.BlockChecksumOption(true)},
		"content size": {lz4.SizeOption(uint64(len(in)))},
		"1 MiB blocks": {lz4.BlockSizeOption(lz4.Block1Mb), lz4.CompressionLevelOption(lz4.Level9)},
		"older runnel": {lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true)},
	} {
		enc := lz4Frame(t, in, opts...)
		for _, dst := range [][]byte{nil, []byte("p"), make([]byte, 0, len(in))} {
			got := mustDecode(t, LZ4, dst, enc, 0)
			if !bytes.Equal(got[len(dst):], in) {
				t.Fatalf("%s: wrong output", name)
			}
		}
		_, err := LZ4.AppendDecode(nil, enc, len(in)-1)
		wantErr(t, err, ErrTooLarge, fmt.Sprintf("%s, limit one less", name))
	}
}

func TestLZ4ConcatenatedFrames(t *testing.T) {
	a, b := recordLike(100<<10, 51), []byte("second frame")
	enc := mustEncode(t, LZ4, nil, a)
	enc = mustEncode(t, LZ4, enc, b)
	if got := mustDecode(t, LZ4, nil, enc, 0); !bytes.Equal(got, append(bytes.Clone(a), b...)) {
		t.Fatal("wrong output")
	}
}

// TestLZ4ClaimedSize checks that a frame header's content size is only a
// hint: a huge claim allocates nothing for it, and the frame still fails.
func TestLZ4ClaimedSize(t *testing.T) {
	enc := lz4Frame(t, []byte("hello, lz4"), lz4.SizeOption(10), lz4.BlockSizeOption(lz4.Block64Kb))
	lie := bytes.Clone(enc)
	binary.LittleEndian.PutUint64(lie[6:], 1<<40)
	lie[14] = lz4HeaderChecksum(lie[4:14])
	// Warm the pools: the decoder and its 64 KiB block buffer are a fixed
	// cost that does not depend on the claim.
	_, _ = LZ4.AppendDecode(nil, lie, 0)
	var err error
	alloc := allocatedBy(func() { _, err = LZ4.AppendDecode(nil, lie, 0) })
	wantErr(t, err, ErrCorrupt, "content size lie")
	if alloc > 1<<20 {
		t.Errorf("a frame claiming 1 TiB made the decoder allocate %d bytes", alloc)
	}
}

// lz4HeaderChecksum is the frame descriptor's checksum: the second byte of
// the xxHash32 of the descriptor.
func lz4HeaderChecksum(desc []byte) byte {
	return byte(xxh32(desc) >> 8)
}

// xxh32 is xxHash32 with seed 0 for inputs under 16 bytes, enough for a
// frame descriptor.
func xxh32(b []byte) uint32 {
	const (
		p1 uint32 = 2654435761
		p2 uint32 = 2246822519
		p3 uint32 = 3266489917
		p4 uint32 = 668265263
		p5 uint32 = 374761393
	)
	if len(b) >= 16 {
		panic("xxh32: long inputs not implemented")
	}
	rotl := func(x uint32, r uint) uint32 { return x<<r | x>>(32-r) }
	h := p5 + uint32(len(b))
	for ; len(b) >= 4; b = b[4:] {
		h = rotl(h+binary.LittleEndian.Uint32(b)*p3, 17) * p4
	}
	for _, c := range b {
		h = rotl(h+uint32(c)*p5, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}

// lz4HandFrame builds a frame with descriptor flags flg (version 1, 64 KiB
// blocks) around the given blocks, each a size field (its high bit set
// for a stored block) and its bytes.
func lz4HandFrame(flg byte, blocks ...[]byte) []byte {
	f := []byte{0x04, 0x22, 0x4d, 0x18, flg, 0x40}
	f = append(f, lz4HeaderChecksum(f[4:6]))
	for _, b := range blocks {
		f = append(f, b...)
	}
	return binary.LittleEndian.AppendUint32(f, 0) // end mark
}

func lz4Stored(data string) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(data))|1<<31), data...)
}

func lz4Compressed(data []byte) []byte {
	return append(binary.LittleEndian.AppendUint32(nil, uint32(len(data))), data...)
}

// TestLZ4DependentBlocks: a frame of dependent (linked) blocks, which the
// lz4 CLI writes and Kafka's Java reader refuses, decodes; and the 64 KiB
// of history the library's reader keeps from it never reaches a later
// decode. A block that copies from before its own start is corrupt, and
// must fail as corrupt every time, not read what an earlier call decoded.
func TestLZ4DependentBlocks(t *testing.T) {
	// Copy 16 bytes from 16 back, then the literals "vwxyz".
	back16 := lz4Compressed([]byte{0x0c, 0x10, 0x00, 0x50, 'v', 'w', 'x', 'y', 'z'})
	linked := lz4HandFrame(0x40, lz4Stored("abcdefghijklmnop"), back16)
	want := "abcdefghijklmnopabcdefghijklmnopvwxyz"
	badIndependent := lz4HandFrame(0x60, back16)
	badLinked := lz4HandFrame(0x40, back16)
	for i := range 10 {
		got, err := LZ4.AppendDecode(nil, linked, 0)
		if err != nil || string(got) != want {
			t.Fatalf("linked frame: %q, %v", got, err)
		}
		for name, bad := range map[string][]byte{"independent": badIndependent, "linked": badLinked} {
			got, err := LZ4.AppendDecode([]byte("p"), bad, 0)
			wantErr(t, err, ErrCorrupt, fmt.Sprintf("round %d: %s block copying from before the frame (decoded to %q)", i, name, got))
		}
	}
}

// TestLZ4Independent: the frames Kafka clients and this package write take
// the pooled reader; anything else is walked to a "no".
func TestLZ4Independent(t *testing.T) {
	in := recordLike(300<<10, 52)
	ours := mustEncode(t, LZ4, nil, in)
	for name, src := range map[string][]byte{
		"ours":         ours,
		"empty input":  mustEncode(t, LZ4, nil, nil),
		"concatenated": mustEncode(t, LZ4, bytes.Clone(ours), []byte("more")),
		"java-like":    lz4Frame(t, in, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(false)),
		"block sums":   lz4Frame(t, in, lz4.BlockSizeOption(lz4.Block256Kb), lz4.BlockChecksumOption(true)),
		"content size": lz4Frame(t, in, lz4.SizeOption(uint64(len(in)))),
		"older runnel": lz4Frame(t, in, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true)),
		"skippable":    append(binary.LittleEndian.AppendUint32([]byte{0x5f, 0x2a, 0x4d, 0x18}, 3), append([]byte("abc"), ours...)...),
	} {
		if !lz4Independent(src) {
			t.Errorf("%s: not taken for independent blocks", name)
		}
	}
	for name, src := range map[string][]byte{
		"linked":         lz4HandFrame(0x40, lz4Stored("abc")),
		"linked second":  append(bytes.Clone(ours), lz4HandFrame(0x40, lz4Stored("abc"))...),
		"truncated":      ours[:len(ours)-1],
		"trailing bytes": append(bytes.Clone(ours), 1, 2, 3),
		"legacy":         {0x02, 0x21, 0x4c, 0x18, 4, 0, 0, 0, 0x40, 'a', 'b', 'c'},
	} {
		if lz4Independent(src) {
			t.Errorf("%s: taken for independent blocks", name)
		}
	}
}

// TestLZ4ContentChecksum: frames with a content checksum, as runnel wrote
// them before it wrote Kafka's Java client's frames (none), still decode
// and pass CheckKafka, and a checksum that does not match the content is
// still refused as corrupt.
func TestLZ4ContentChecksum(t *testing.T) {
	in := recordLike(150<<10, 53)
	older := lz4Frame(t, in, lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true))
	if older[4]&lz4FlagContentSum == 0 {
		t.Fatalf("FLG %#x: want a content checksum", older[4])
	}
	if got := mustDecode(t, LZ4, nil, older, 0); !bytes.Equal(got, in) {
		t.Fatal("older frame: wrong output")
	}
	if err := LZ4.CheckKafka(older); err != nil {
		t.Errorf("older frame refused: %v", err)
	}
	bad := bytes.Clone(older)
	bad[len(bad)-1] ^= 0x01 // the last byte of the content checksum
	_, err := LZ4.AppendDecode(nil, bad, 0)
	wantErr(t, err, ErrCorrupt, "content checksum off by one bit")
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
