package compression

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Reader streams the decompressed form of one codec's input: what
// Codec.AppendDecode would append, in pieces, without holding it whole. It
// is for checks that read decompressed records once and keep none of them
// (a broker's check of a produced batch), so that their memory is the
// codec's window or block, not the decompressed size.
//
// A Reader gives the same bytes and the same verdict as AppendDecode with
// the same limit:
//
//   - whatever AppendDecode refuses, Read ends with an error of the same
//     kind (ErrCorrupt, ErrTooLarge: an *Error), after the bytes that
//     precede the fault;
//   - what AppendDecode takes, Read delivers whole, ending with io.EOF.
//
// Where a codec cannot stream, it decodes whole as AppendDecode does, into
// a buffer the Reader keeps. Codec by codec:
//
//   - gzip streams, holding the deflate window (32 KiB) and its buffers.
//   - lz4 streams, holding one block buffer of the size the frame header
//     declares (64 KiB as Kafka clients write it, at most 4 MiB), but
//     frames whose blocks can hold at most 1 MiB (a producer's batch),
//     which it decodes whole, as that is faster.
//   - snappy's xerial framing streams one chunk at a time (each at most
//     32 times its compressed size, and within the limit). A raw snappy
//     block, as franz-go and runnel write snappy, has no streaming form
//     and is decoded whole: at most 32 times the compressed size, and
//     within the limit.
//   - zstd streams a frame that declares a window of at most 8 MiB and
//     is not a single segment, holding the window plus two blocks, when
//     it holds more than 1 MiB and more than that window and blocks.
//
// Other zstd frames are decoded whole, as before:
//
//   - a single-segment frame (whose window is its content size, as zstd
//     writes a frame of known size no larger than its window);
//   - one of a larger window, which a streaming decoder would have to hold
//     anyway;
//   - a frame that states a size within 1 MiB or within its window and
//     two blocks.
//
// A zstd frame that does not state its size is tried whole up to 1 MiB
// first, then streamed: a larger one is decoded that far twice. A frame
// that fails to decode while streaming is decoded again whole, so that
// its verdict is exactly AppendDecode's (whose own sometimes depends on
// how far the output got, see AppendDecode). A fault costs the
// decompressed size, up to the limit.
//
// A Reader is not safe for concurrent use. Close releases its decoders.
// A Reader is made by Codec.NewReader; a zero Reader (one not made by it)
// is closed, as is one after Close: its Read returns an error matching
// fs.ErrClosed, and Close does nothing.
type Reader struct {
	// open is true from NewReader to Close: a second Close must not put
	// r in the pool again, where two NewReader would then share it.
	open  bool
	codec Codec
	limit int
	left  int // bytes the limit still allows from r
	r     io.Reader
	err   error // sticky: the error Read returns once data is drained

	// whole is output decoded whole, served from whole[off:] once r (if
	// any) has delivered off bytes.
	whole    []byte
	useWhole bool
	off      int
	streamed int // bytes read from r, or xerial chunks, so far

	src       []byte // the input, for a whole decode after a streaming fault
	streamAll bool   // see newReader
	stalls    int
	probe     [1]byte

	gz     *gzipDecoder
	lz     *lz4Decoder
	lzPool bool
	zs     *zstdStreamer
	xerial []byte // the xerial chunks not yet decoded
	chunk  []byte // the current xerial chunk's output (reused)
	coff   int    // how much of chunk is read
	buf    []byte // whole decodes (reused)
}

var readers = sync.Pool{New: func() any { return new(Reader) }}

// NewReader returns a Reader of src's decompressed form, limit bytes at
// most (limit <= 0 means DefaultDecodeLimit), from a pool: call Close
// when done. It never retains src past Close.
//
// Errors are Read's: a fault NewReader finds (an unknown codec, a header
// that claims too much) is returned by the first Read.
func (c Codec) NewReader(src []byte, limit int) *Reader {
	return c.newReader(src, limit, false)
}

// newReader is NewReader; streamAll makes it stream every zstd frame that
// it can stream within zstdStreamWindow, small or not (for tests).
func (c Codec) newReader(src []byte, limit int, streamAll bool) *Reader {
	if limit <= 0 {
		limit = DefaultDecodeLimit
	}
	r := readers.Get().(*Reader)
	r.open = true
	r.codec, r.limit, r.left, r.src, r.streamAll = c, limit, limit, src, streamAll
	if err := r.start(); err != nil {
		r.err = &Error{Codec: c, Op: opDecode, Err: err}
	}
	return r
}

// start sets r up to decode r.src.
func (r *Reader) start() error {
	src := r.src
	switch r.codec {
	case None:
		if len(src) > r.limit {
			return tooLarge(r.limit)
		}
		r.whole, r.useWhole = src, true
		return nil
	case Gzip:
		if len(src) == 0 {
			return errEmpty
		}
		d := gzipDecoders.Get().(*gzipDecoder)
		r.gz = d
		d.br.Reset(src)
		if err := d.r.Reset(&d.br); err != nil {
			return corrupt(err)
		}
		r.r = &d.r
		return nil
	case LZ4:
		if len(src) == 0 {
			return errEmpty
		}
		// A frame whose blocks can hold at most wholeBelow is decoded
		// whole: it is faster, and the buffer is no larger than the
		// records of a producer's batch.
		if n, ok := lz4MaxDecoded(src); ok && n <= wholeBelow && !r.streamAll {
			return r.decodeWhole()
		}
		// As lz4Decode: only frames of independent blocks use the pool.
		if lz4Independent(src) {
			r.lz, r.lzPool = lz4Decoders.Get().(*lz4Decoder), true
		} else {
			r.lz = lz4Decoders.New().(*lz4Decoder)
		}
		r.lz.br.Reset(src)
		r.lz.r.Reset(&r.lz.br)
		r.r = r.lz.r
		return nil
	case Snappy:
		if !bytes.HasPrefix(src, xerialMagic) {
			return r.decodeWhole()
		}
		if len(src) < xerialHeaderLen {
			return corruptf("xerial header truncated to %d bytes", len(src))
		}
		r.xerial = src[xerialHeaderLen:]
		return nil
	case Zstd:
		return r.startZstd()
	default:
		return ErrUnknownCodec
	}
}

// decodeWhole decodes r.src whole into r.buf, to be served from r.off.
func (r *Reader) decodeWhole() error {
	out, err := r.codec.AppendDecode(r.buf[:0], r.src, r.limit)
	if err != nil {
		// Unwrap: Read wraps it again.
		var e *Error
		if errors.As(err, &e) {
			return e.Err
		}
		return err
	}
	if len(out) < r.off {
		return corruptf("decoded whole to %d bytes, fewer than the %d streamed", len(out), r.off)
	}
	r.buf, r.whole, r.useWhole, r.r = out, out, true, nil
	return nil
}

// zstdStreamWindow is the largest zstd window that a Reader streams; a
// frame with a larger one (or a single segment) is decoded whole.
const zstdStreamWindow = 8 << 20

// wholeBelow is the output up to which a Reader decodes a zstd frame or
// lz4 frames whole rather than streams them, when it knows the output is
// no larger: the 1 MiB of records a runnel producer's batch holds at most
// (BatchMaxBytes), Kafka's max.request.size.
const wholeBelow = 1 << 20

// lz4MaxDecoded bounds what src, lz4 frames of magic 0x184d2204 laid end
// to end, can decode to without decompressing it: each block at most the
// block size its frame's header declares. ok is false for anything else
// (a legacy or skippable frame, a frame cut short, a bad block size).
func lz4MaxDecoded(src []byte) (n uint64, ok bool) {
	for len(src) > 0 {
		if len(src) < 7 || binary.LittleEndian.Uint32(src) != lz4FrameMagic {
			return 0, false
		}
		idx := src[5] >> 4 & 7 // BD: the block maximum size
		if idx < 4 {
			return 0, false
		}
		max := uint64(1) << (8 + 2*idx)
		flen, fok := lz4FrameLen(src)
		if !fok {
			return 0, false
		}
		blocks, _ := lz4Blocks(src)
		n += uint64(blocks) * max
		src = src[flen:]
	}
	return n, true
}

// lz4Blocks counts the blocks of the frame src starts with, which
// lz4FrameLen has walked.
func lz4Blocks(src []byte) (blocks int, ok bool) {
	flg := src[4]
	h := 7
	if flg&lz4FlagSize != 0 {
		h += 8
	}
	if flg&lz4FlagDictID != 0 {
		h += 4
	}
	rest := src[h:]
	for len(rest) >= 4 {
		size := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if size == 0 {
			return blocks, true
		}
		n := uint64(size &^ lz4Uncompressed)
		if flg&lz4FlagBlockSum != 0 {
			n += 4
		}
		if n > uint64(len(rest)) {
			return blocks, false
		}
		rest = rest[n:]
		blocks++
	}
	return blocks, false
}

type zstdStreamer struct {
	dec *zstd.Decoder
	br  bytes.Reader
}

// newZstdStreamer makes a streaming decoder: synchronous (no goroutines),
// holding one window plus two blocks of history once used. One is made
// per use, not pooled: each Decoder has a channel of its own, and one made
// in a testing/synctest bubble cannot be used outside it (see zstd.go).
// It costs little beside the history, which a stream holds anyway.
func newZstdStreamer() *zstdStreamer {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxWindow(zstdStreamWindow),
		zstd.WithDecodeBuffersBelow(0),
	)
	if err != nil {
		panic("runnel/compression: zstd stream decoder options: " + err.Error())
	}
	return &zstdStreamer{dec: dec}
}

func (r *Reader) startZstd() error {
	src := r.src
	// zstdDecode's checks, in its order, before anything is decoded.
	if len(src) == 0 {
		return errEmpty
	}
	var h zstd.Header
	if err := h.Decode(src); err != nil {
		return corrupt(err)
	}
	if h.HasFCS {
		if h.FrameContentSize > uint64(r.limit) {
			return tooLarge(r.limit)
		}
		if h.FrameContentSize > zstdMaxDecoded(len(src)) {
			return corruptf("zstd frame of %d bytes claims to decode to %d", len(src), h.FrameContentSize)
		}
	}
	whole := func() error {
		if h.HasFCS {
			// Room for the frame and a block more, so that the decoder
			// takes its fast path (which writes past the output) to the
			// last block, as in a buffer reused for batches of several
			// sizes.
			if n := int(h.FrameContentSize) + zstdBlockSlack; cap(r.buf) < n {
				r.buf = make([]byte, 0, n)
			}
		}
		return r.decodeWhole()
	}
	// Decode whole what a streaming decoder would hold about as much of
	// (a single segment, whose window is its content size; a window
	// above zstdStreamWindow; a stated size within the window and two
	// blocks), and what is small (wholeBelow): it is faster.
	switch {
	case h.SingleSegment || h.WindowSize > zstdStreamWindow:
		return whole()
	case r.streamAll:
	case r.limit <= wholeBelow:
		return whole()
	case h.HasFCS && h.FrameContentSize <= max(h.WindowSize+2*zstdMaxBlock, wholeBelow):
		return whole()
	case !h.HasFCS:
		// A frame that does not state its size (Java's ZstdOutputStream
		// writes them) is tried whole up to wholeBelow: a small one
		// costs what it did, a larger one that much decoding twice.
		// In a buffer of that size, so that zstdDecode tries once.
		if cap(r.buf) < wholeBelow {
			r.buf = make([]byte, 0, wholeBelow)
		}
		out, err := Zstd.AppendDecode(r.buf[:0], src, wholeBelow)
		if err == nil {
			r.buf, r.whole, r.useWhole = out, out, true
			return nil
		}
		if !errors.Is(err, ErrTooLarge) {
			// The verdict at the limit, which fails as early.
			return r.decodeWhole()
		}
	}
	z := newZstdStreamer()
	r.zs = z
	z.br.Reset(src)
	if err := z.dec.Reset(&z.br); err != nil {
		return r.decodeWhole()
	}
	r.r = z.dec
	return nil
}

// Whole returns the output when r decoded its input whole, and without a
// fault, and nothing has been read yet; ok is false otherwise. So a caller
// can read the output in place rather than copy it. The bytes are r's,
// valid until Close.
//
// r decodes whole a raw snappy block, a small lz4 or zstd input, or a zstd
// frame a streaming decoder would hold as much of (see Reader).
func (r *Reader) Whole() (out []byte, ok bool) {
	if r.useWhole && r.off == 0 && r.err == nil {
		return r.whole, true
	}
	return nil, false
}

// Read reads decompressed bytes into p. At the end it returns io.EOF; on
// a fault, an *Error matching ErrCorrupt or ErrTooLarge (see AppendDecode),
// once the bytes that precede the fault are read.
func (r *Reader) Read(p []byte) (int, error) {
	if !r.open {
		return 0, errReaderClosed
	}
	if r.useWhole {
		if r.off < len(r.whole) {
			n := copy(p, r.whole[r.off:])
			r.off += n
			return n, nil
		}
		if r.err == nil {
			r.err = io.EOF
		}
	}
	if r.err != nil || len(p) == 0 {
		return 0, r.err
	}
	var (
		n   int
		err error
	)
	if r.codec == Snappy {
		n, err = r.readXerial(p)
	} else {
		n, err = r.readLimited(p)
	}
	r.streamed += n
	if err != nil && err != io.EOF && r.zs != nil && !errors.Is(err, ErrTooLarge) {
		// A zstd stream's fault: decode whole for AppendDecode's own
		// verdict (and should that take the input after all, serve the
		// rest of its output).
		r.off = r.streamed
		if err = r.decodeWhole(); err == nil {
			if n > 0 {
				return n, nil
			}
			return r.Read(p)
		}
	}
	switch {
	case err == io.EOF:
		r.err = err
	case err != nil:
		r.err = r.wrap(err)
	}
	if n > 0 {
		return n, nil
	}
	return 0, r.err
}

// wrap makes err, a decoder's error, an *Error as AppendDecode returns it.
func (r *Reader) wrap(err error) error {
	if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnknownCodec) {
		err = corrupt(err)
	}
	return &Error{Codec: r.codec, Op: opDecode, Err: err}
}

// readLimited reads from r.r as readAppend does: at most r.left bytes, and
// once the limit is reached a one-byte probe, whose arrival is ErrTooLarge.
func (r *Reader) readLimited(p []byte) (int, error) {
	var (
		n   int
		err error
	)
	if r.left > 0 {
		n, err = r.r.Read(p[:min(len(p), r.left)])
		r.left -= n
	} else {
		n, err = r.r.Read(r.probe[:])
		if n > 0 {
			return 0, tooLarge(r.limit)
		}
	}
	switch {
	case err != nil:
		return n, err
	case n == 0:
		if r.stalls++; r.stalls > 100 {
			return 0, errNoProgress
		}
	default:
		r.stalls = 0
	}
	return n, nil
}

// readXerial serves the current xerial chunk's output, decoding the next
// chunk when it is used up, with xerialDecode's checks in its order.
func (r *Reader) readXerial(p []byte) (int, error) {
	for r.coff >= len(r.chunk) {
		rest := r.xerial
		if len(rest) == 0 {
			return 0, io.EOF
		}
		if len(rest) < 4 {
			return 0, corruptf("xerial chunk length truncated at offset %d", len(r.src)-len(rest))
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return 0, corruptf("xerial chunk of %d bytes at offset %d, but only %d bytes left", n, len(r.src)-len(rest)-4, len(rest))
		}
		out, err := snappyDecodeBlock(r.chunk[:0], rest[:n], r.left, r.limit, 0)
		if err != nil {
			return 0, err
		}
		r.chunk, r.coff = out, 0
		r.left -= len(out)
		r.xerial = rest[n:]
	}
	n := copy(p, r.chunk[r.coff:])
	r.coff += n
	return n, nil
}

// errReaderClosed is what Read returns after Close.
var errReaderClosed = fmt.Errorf("%sread of a closed Reader: %w", errPrefix, fs.ErrClosed)

// Close releases r's decoders and buffers to their pools, r too: r must
// not be used afterwards, as a later NewReader may hand it out again. A
// second Close (before that) does nothing, and a Read returns an error
// matching fs.ErrClosed.
func (r *Reader) Close() error {
	if !r.open {
		return nil // closed already, or a zero Reader
	}
	if r.gz != nil {
		r.gz.br.Reset(nil)
		gzipDecoders.Put(r.gz)
	}
	if r.lz != nil {
		r.lz.br.Reset(nil)
		r.lz.r.Reset(&r.lz.br)
		if r.lzPool {
			lz4Decoders.Put(r.lz)
		}
	}
	if r.zs != nil {
		r.zs.dec.Close()
	}
	buf, chunk := r.buf, r.chunk
	if cap(buf) > 4<<20 {
		buf = nil
	}
	if cap(chunk) > 4<<20 {
		chunk = nil
	}
	*r = Reader{buf: buf[:0], chunk: chunk[:0]}
	readers.Put(r)
	return nil
}
