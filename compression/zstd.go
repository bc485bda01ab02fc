package compression

import (
	"errors"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstd: Zstandard frames via github.com/klauspost/compress/zstd.
//
// One Encoder and one Decoder are shared by all callers through EncodeAll
// and DecodeAll, which are safe for concurrent use; each keeps a small set
// of internal coders (zstdConcurrency) and further callers wait for one to
// be free. They are built on first use.
//
// DecodeAll does not bound its output by itself. The decoder is created
// with WithDecodeAllCapLimit, which makes DecodeAll fail rather than grow
// past the capacity of the dst it is given, and zstdDecode hands it a dst
// whose spare capacity is no more than the limit. Working in the caller's
// buffer also means the frame's declared window costs no memory.

// zstdConcurrency is how many zstd encodes, and separately decodes, run at
// once. Each encoder holds about 2 MiB of tables and history, so this is
// kept small; more parallelism rarely helps batch-sized inputs.
func zstdConcurrency() int {
	return min(runtime.GOMAXPROCS(0), 4)
}

// zstdWindow is the encoder's window. Kafka batches are rarely larger, and a
// bigger window costs every pooled encoder memory.
const zstdWindow = 1 << 20

var zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(zstdConcurrency()),
		zstd.WithWindowSize(zstdWindow),
	)
	if err != nil {
		panic("runnel/compression: zstd encoder options: " + err.Error())
	}
	return enc
})

var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(zstdConcurrency()),
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		panic("runnel/compression: zstd decoder options: " + err.Error())
	}
	return dec
})

func zstdEncode(dst, src []byte) ([]byte, error) {
	return zstdEncoder().EncodeAll(src, dst), nil
}

const (
	// zstdMaxBlock is the largest a zstd block can decode to.
	zstdMaxBlock = 128 << 10
	// zstdMinGuess is the smallest first guess at the size of a frame that
	// does not state it.
	zstdMinGuess = 64 << 10
)

// zstdMaxDecoded bounds what n bytes of zstd input can decode to: every
// block takes at least 4 bytes (3 of header, 1 of content) and yields at
// most zstdMaxBlock bytes.
func zstdMaxDecoded(n int) uint64 {
	return (uint64(n)/4 + 1) * zstdMaxBlock
}

func zstdDecode(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 {
		return dst, errEmpty
	}
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return dst, corrupt(err)
	}
	orig, base := dst, len(dst)
	maxOut := zstdMaxDecoded(len(src))

	// want is the spare capacity DecodeAll gets, and so the most it may
	// produce this attempt. Start with what dst already has (so steady-state
	// calls allocate nothing), else the frame's stated size, else a guess.
	want := min(cap(dst)-base, limit)
	switch {
	case h.HasFCS:
		if h.FrameContentSize > uint64(limit) {
			return dst, tooLarge(limit)
		}
		if h.FrameContentSize > maxOut {
			return dst, corruptf("zstd frame of %d bytes claims to decode to %d", len(src), h.FrameContentSize)
		}
		want = max(want, int(h.FrameContentSize))
	case want < zstdMinGuess:
		guess := uint64(max(8*len(src), zstdMinGuess))
		want = max(want, int(min(guess, maxOut, uint64(limit))))
	}

	dec := zstdDecoder()
	for {
		dst = reserve(dst, want)
		out, err := dec.DecodeAll(src, dst[:base:base+want])
		if err == nil {
			return adopt(dst, out), nil
		}
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) {
			return orig, corrupt(err)
		}
		// The output does not fit in want bytes (either a later frame
		// states a larger size, or a frame without one ran past it).
		// Frames without a stated size hit this path: the decoder prints a
		// line to stderr when it does, which is beyond our control.
		if want >= limit {
			return orig, tooLarge(limit)
		}
		want = min(max(2*want, zstdMinGuess), limit)
	}
}

// adopt returns dst extended to cover out, which DecodeAll appended to
// dst[:len(dst)] within dst's capacity; so the caller keeps dst's full
// capacity rather than the window DecodeAll was given. If DecodeAll had
// moved the data (it does not, with the capacity limit), out is returned.
func adopt(dst, out []byte) []byte {
	base := len(dst)
	if len(out) == base {
		return dst
	}
	if len(out) <= cap(dst) && &out[base] == &dst[:base+1][base] {
		return dst[:len(out)]
	}
	return out
}
