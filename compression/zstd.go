package compression

import (
	"errors"
	"runtime"

	"github.com/klauspost/compress/zstd"
)

// zstd: Zstandard frames via github.com/klauspost/compress/zstd.
//
// Encoders are kept per level (of klauspost's four, see level.go), at most
// zstdConcurrency of each, in a zstdPool: a caller takes a free one, or
// makes one when none is free and fewer are made, or waits for one to
// be freed. So a level has as many as ever encoded at once. Each is a
// synchronous streaming encoder (concurrency 1). One Decoder, made when
// the package is loaded, serves every DecodeAll, which is safe for
// concurrent use and runs at most zstdConcurrency decodes at once;
// further callers wait.
//
// Nothing shared here may hold a channel made in a testing/synctest
// bubble, as the first use may come from one: a channel made in a bubble
// is that bubble's, and an operation on it from outside stops the
// program. klauspost's EncodeAll takes its coders from a channel that the
// Encoder makes on first use, and every Decoder makes one when it is
// created. So the pools and the shared decoder are made at package load,
// outside any bubble, and the encoders, which may be made in one, stream
// (Write and Close), which at concurrency 1 uses no channel, no goroutine
// and adds to no WaitGroup. A frame of less than one block (128 KiB; 64
// KiB at SpeedFastest) comes out byte for byte as EncodeAll writes it
// (an empty one is a constant, zstdEmptyFrame); one of a block
// or more is written block by block, stating its content size and a
// window of the least power of two above it, at most zstdWindow, where
// EncodeAll would mark one up to zstdWindow a single segment (one of
// exactly a block ends with an empty block). The streaming decoders of
// Reader are made per use (reader.go), as a pool could hand one made in a
// bubble to a caller outside it.
//
// DecodeAll does not bound its output by itself. The decoder is created
// with WithDecodeAllCapLimit, which makes DecodeAll stop with an error as
// soon as the output outgrows the capacity of the dst it is given, and
// zstdDecode hands it a dst whose spare capacity is no more than the limit
// (see zstdDecode). Decoding in the caller's buffer also means a frame's
// declared window costs no memory.

// zstdConcurrency is how many zstd encodes of each level, and separately
// decodes, run at once: min(GOMAXPROCS, 4) as the package is loaded, when
// the pools and the decoder are made (a later runtime.GOMAXPROCS, in main
// or by go test -cpu, changes nothing here). Each encoder holds a few MiB
// of match tables and history, so this is kept small; more parallelism
// rarely helps batch-sized inputs.
var zstdConcurrency = min(runtime.GOMAXPROCS(0), 4)

// zstdWindow is the encoder's window. Kafka batches are rarely larger, and a
// bigger window costs every pooled encoder memory. franz-go's 64 KiB window
// was tried (2026-12-05): on its own, a 1 MiB batch of JSON-like text
// encoded and decoded faster and smaller with it, but a produce through
// the broker (producer's BenchmarkProduceCompressed, zstd) took 1.8 times
// as long, so a batch up to 1 MiB stays within one window.
const zstdWindow = 1 << 20

// zstdEncoder is one streaming encoder of a level and the writer it
// appends its frame to.
type zstdEncoder struct {
	enc *zstd.Encoder
	out appender
}

// appender is an io.Writer that appends to b.
type appender struct{ b []byte }

func (a *appender) Write(p []byte) (int, error) {
	a.b = append(a.b, p...)
	return len(p), nil
}

// zstdPool keeps the encoders of one of klauspost's levels: at most
// zstdConcurrency, each made when a caller finds none free and fewer
// than that made. Made at package load: see above.
type zstdPool struct {
	level zstd.EncoderLevel
	free  chan *zstdEncoder // encoders made and not in use
	room  chan struct{}     // a token for each encoder not yet made
}

// zstdPools holds each level's pool, indexed by level.
var zstdPools = func() (pools [zstd.SpeedBestCompression + 1]zstdPool) {
	n := zstdConcurrency
	for level := zstd.SpeedFastest; level <= zstd.SpeedBestCompression; level++ {
		pools[level] = zstdPool{level: level, free: make(chan *zstdEncoder, n), room: make(chan struct{}, n)}
		for range n {
			pools[level].room <- struct{}{}
		}
	}
	return pools
}()

// get returns a free encoder of p's level, or a new one when none is
// free and fewer than zstdConcurrency are made; otherwise it waits for
// one to be freed. One made and free comes first, so that callers one
// at a time make one encoder, not each of the level's in turn (each
// holds MiBs: see AppendEncodeLevel).
func (p *zstdPool) get() *zstdEncoder {
	select {
	case e := <-p.free:
		return e
	default:
	}
	select {
	case e := <-p.free:
		return e
	case <-p.room:
		return newZstdEncoder(p.level)
	}
}

// put gives back e, from p's get. It never waits: p has room for every
// encoder it made.
func (p *zstdPool) put(e *zstdEncoder) { p.free <- e }

// newZstdEncoder makes an encoder of level.
func newZstdEncoder(level zstd.EncoderLevel) *zstdEncoder {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		// One: the encoder then writes each block where it is called,
		// with no goroutine or channel (see above).
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		// No content checksum: the record batch's CRC-32C covers the
		// payload, and zstd's reference library (Kafka's Java client
		// uses it through zstd-jni) writes none by default.
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		panic("runnel/compression: zstd encoder options: " + err.Error())
	}
	return &zstdEncoder{enc: enc}
}

// zstdDecoder serves every DecodeAll. Made at package load: see above.
var zstdDecoder = func() *zstd.Decoder {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(zstdConcurrency),
		zstd.WithDecodeAllCapLimit(true),
	)
	if err != nil {
		panic("runnel/compression: zstd decoder options: " + err.Error())
	}
	return dec
}()

// zstdEmptyFrame is the frame of no bytes, as EncodeAll writes it: a
// single segment stating its size, 0, and one empty last block. The
// streaming encoder would state no size and a window of zstdWindow, which
// a streaming decoder that does not know the size (zstd's reference
// library, Java's client through zstd-jni) would make room for.
var zstdEmptyFrame = []byte{0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00}

// zstdEncode appends src's zstd frame to dst, with an encoder of level
// from its pool.
func zstdEncode(dst, src []byte, level zstd.EncoderLevel) ([]byte, error) {
	if len(src) == 0 {
		return append(dst, zstdEmptyFrame...), nil
	}
	p := &zstdPools[level]
	e := p.get()
	defer p.put(e)
	e.out.b = dst
	defer func() { e.out.b = nil }() // keeps no caller's buffer
	e.enc.ResetContentSize(&e.out, int64(len(src)))
	if _, err := e.enc.Write(src); err != nil {
		return dst, err
	}
	if err := e.enc.Close(); err != nil {
		return dst, err
	}
	return e.out.b, nil
}

const (
	// zstdMaxBlock is the most one zstd block can decode to.
	zstdMaxBlock = 128 << 10
	// zstdBlockSlack is how far the decoder may write into a block's
	// output before it notices the output does not fit.
	zstdBlockSlack = zstdMaxBlock + 16
	// zstdMinGuess is the smallest first guess at the size of a frame that
	// does not state it; zstdGuessRatio the assumed compression ratio.
	zstdMinGuess   = 64 << 10
	zstdGuessRatio = 16
)

// zstdMaxDecoded bounds what n bytes of zstd input can decode to: every
// block takes at least 4 bytes (3 of header, 1 of content) and yields at
// most zstdMaxBlock bytes.
func zstdMaxDecoded(n int) uint64 {
	return (uint64(n)/4 + 1) * zstdMaxBlock
}

// zstdDecode decodes with DecodeAll into a region of dst whose capacity,
// room, is at most the limit. A frame that states its content size (as
// EncodeAll writes, and franz-go) gets exactly that room, checked against
// the limit first. A frame that does not (as Java's ZstdOutputStream
// writes) gets dst's spare capacity, or a guess, and is retried with twice
// the room when the output does not fit, up to the limit. Retries cost a
// decode each; a dst reused across calls avoids them.
//
// The decoder reports "does not fit" in more than one way, one of them an
// error indistinguishable from corruption. But a decode that ran out of
// room has always produced more than room-zstdBlockSlack bytes, so an error
// with less output than that is corruption, and any other is treated as
// lack of room: a retry, or ErrTooLarge once room has reached the limit
// (the true output then exceeds the limit, unless the input is corrupt
// within its last block before the limit).
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

	room := min(cap(dst)-base, limit)
	switch {
	case h.HasFCS:
		if h.FrameContentSize > uint64(limit) {
			return dst, tooLarge(limit)
		}
		if h.FrameContentSize > maxOut {
			return dst, corruptf("zstd frame of %d bytes claims to decode to %d", len(src), h.FrameContentSize)
		}
		room = max(room, int(h.FrameContentSize))
	case room < zstdMinGuess:
		guess := uint64(max(zstdGuessRatio*len(src), zstdMinGuess))
		room = max(room, int(min(guess, maxOut, uint64(limit))))
	}

	dec := zstdDecoder
	for {
		dst = reserve(dst, room)
		// Decode into an empty slice at base, so the decoder writes in
		// place instead of copying each block behind the prefix.
		out, err := dec.DecodeAll(src, dst[base:base:base+room])
		if err == nil && len(out) > room {
			err = zstd.ErrDecoderSizeExceeded // cannot happen with the capacity limit
		}
		if err == nil {
			if len(out) > 0 && &out[0] != &dst[base : base+1][0] {
				copy(dst[base:], out) // moved; cannot happen either
			}
			return dst[:base+len(out)], nil
		}
		if !errors.Is(err, zstd.ErrDecoderSizeExceeded) && len(out) <= room-zstdBlockSlack {
			return orig, corrupt(err)
		}
		if room >= limit {
			return orig, tooLarge(limit)
		}
		room = min(max(2*room, zstdMinGuess), limit)
	}
}
