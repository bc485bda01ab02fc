package compression

import (
	"runtime"
	"testing"
	"weak"

	"github.com/stretchr/testify/require"
)

// encodeIntoFresh encodes src with encode into a fresh dst, checks the
// result decodes as src shows it is whole, and returns a weak pointer
// to dst's memory alone: nothing of the caller holds it.
//
//go:noinline
func encodeIntoFresh(t *testing.T, encode func(dst, src []byte) ([]byte, error), src []byte) weak.Pointer[byte] {
	dst := make([]byte, 0, 1<<20)
	out, err := encode(dst, src)
	require.NoError(t, err)
	require.NotEmpty(t, out)
	require.Same(t, &dst[:1][0], &out[:1][0], "encoded into dst, which had room")
	return weak.Make(&dst[:1][0])
}

// TestPooledEncodersDoNotRetainDst: gzip's and lz4's pooled encoders
// write through an appendWriter into the caller's dst, and zstd's kept
// ones through an appender; the pool keeps the encoder, not dst. An
// encoder that kept its writer's slice kept the caller's buffer (a whole
// produce batch's) alive as long as the pool held the encoder, which a
// GC moves to the pool's victim cache rather than dropping, and zstd
// keeps for the life of the process. zstd at a block and more too, whose
// frame is written block by block.
func TestPooledEncodersDoNotRetainDst(t *testing.T) {
	src := recordLike(8<<10, 40)
	for name, encode := range map[string]func(dst, src []byte) ([]byte, error){
		"gzip": func(dst, src []byte) ([]byte, error) { return gzipEncode(dst, src, gzipLevel(gzipDefaultLevel)) },
		"lz4":  func(dst, src []byte) ([]byte, error) { return lz4Encode(dst, src, lz4Level(lz4DefaultLevel)) },
		"zstd": func(dst, src []byte) ([]byte, error) { return zstdEncode(dst, src, zstdLevel(zstdDefaultLevel)) },
		"zstd of two blocks": func(dst, src []byte) ([]byte, error) {
			return zstdEncode(dst, recordLike(2*zstdMaxBlock, 41), zstdLevel(zstdDefaultLevel))
		},
	} {
		w := encodeIntoFresh(t, encode, src)
		runtime.GC()
		require.Nil(t, w.Value(), "%s: the pooled encoder kept the caller's dst", name)
	}
}
