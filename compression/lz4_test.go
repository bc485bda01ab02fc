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
