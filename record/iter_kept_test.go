package record

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/runnel/runnel/compression"
	"github.com/stretchr/testify/require"
)

// streamCompressed returns a batch of n records of size-byte values,
// whose records are compressed as a streaming writer would: Java's
// ZstdOutputStream writes a zstd frame that does not state its size, and
// a gzip stream never does.
func streamCompressed(t *testing.T, codec compression.Codec, n, size int) Batch {
	t.Helper()
	var bld Builder
	for i := range n {
		bld.Append(int64(1000+i), fmt.Appendf(nil, "k%d", i), bytes.Repeat([]byte{byte('a' + i%26)}, size), nil)
	}
	plain, err := bld.Finish(compression.None)
	require.NoError(t, err)
	var buf bytes.Buffer
	switch codec {
	case compression.Zstd:
		w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
		require.NoError(t, err)
		_, err = w.Write(plain[HeaderSize:])
		require.NoError(t, err)
		require.NoError(t, w.Flush()) // the header goes out before the size is known
		require.NoError(t, w.Close())
		var h zstd.Header
		require.NoError(t, h.Decode(buf.Bytes()))
		require.False(t, h.HasFCS, "the frame states its size")
	case compression.Gzip:
		w := gzip.NewWriter(&buf)
		_, err := w.Write(plain[HeaderSize:])
		require.NoError(t, err)
		require.NoError(t, w.Close())
	default:
		t.Fatalf("codec %v", codec)
	}
	b := Batch(append(append([]byte(nil), plain[:HeaderSize]...), buf.Bytes()...))
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-12))
	binary.BigEndian.PutUint16(b[offAttributes:], uint16(b.Attributes())|uint16(codec))
	b.UpdateCRC()
	require.NoError(t, b.Validate(0))
	return b
}

// TestIterKeepsNoOversizedBuffer: the records Iter returns may be kept,
// and keep its decompression buffer alive, so the buffer is about their
// size even when the decoder had to guess (a zstd frame without its size
// was decoded into at least 64 KiB: 60 times the records of a small
// batch). IterBuffer's buffer, reused by scans, is left as it grew.
func TestIterKeepsNoOversizedBuffer(t *testing.T) {
	for _, tc := range []struct {
		codec   compression.Codec
		n, size int
	}{
		{compression.Zstd, 10, 100},   // ~1 KiB in a 64 KiB guess: copied
		{compression.Zstd, 400, 100},  // ~42 KiB in 64 KiB: kept as is
		{compression.Zstd, 2000, 100}, // ~210 KiB, after retries
		{compression.Gzip, 10, 100},
		{compression.Gzip, 3000, 100},
	} {
		t.Run(fmt.Sprintf("%v/n=%d", tc.codec, tc.n), func(t *testing.T) {
			b := streamCompressed(t, tc.codec, tc.n, tc.size)
			it, err := b.Iter(0, 0)
			require.NoError(t, err)
			out := it.Buffer()
			require.NotEmpty(t, out)
			require.LessOrEqual(t, cap(out)-len(out), max(len(out), keptSlack),
				"a buffer of %d bytes for %d bytes of records", cap(out), len(out))
			var r Record
			i := 0
			for it.Next(&r) {
				require.Equal(t, int64(i), r.Offset)
				require.Equal(t, fmt.Sprintf("k%d", i), string(r.Key))
				require.Equal(t, bytes.Repeat([]byte{byte('a' + i%26)}, tc.size), r.Value)
				i++
			}
			require.NoError(t, it.Err())
			require.Equal(t, tc.n, i)
		})
	}
}
