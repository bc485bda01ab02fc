package compression

import (
	"bytes"
	"encoding/binary"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// gzip: RFC 1952 streams via github.com/klauspost/compress/gzip, at its
// default compression level (DefaultCompression, its level 5; Kafka's Java
// producer uses zlib's default, its level 6) unless a level is asked for
// (see level.go). Writers and readers are pooled, a pool for each level;
// the pools fill only on first use.

// gzipMaxRatio bounds how much deflate can expand: one 258-byte match costs
// at least two bits, so no stream inflates more than 1032:1.
const gzipMaxRatio = 1032

type gzipEncoder struct {
	w  *gzip.Writer
	aw appendWriter
}

// gzipEncoders holds the writers of each of klauspost's levels 1 to 9,
// indexed by level (see gzipLevel: its DefaultCompression is its level 5,
// the same writer).
var gzipEncoders [gzip.BestCompression + 1]sync.Pool

func gzipEncode(dst, src []byte, level int) ([]byte, error) {
	pool := &gzipEncoders[level]
	e, _ := pool.Get().(*gzipEncoder)
	if e == nil {
		e = new(gzipEncoder)
		// NewWriterLevel fails only for an invalid level.
		e.w, _ = gzip.NewWriterLevel(&e.aw, level)
	}
	out, err := appendEncode(e.w, &e.aw, dst, src)
	pool.Put(e)
	return out, err
}

type gzipDecoder struct {
	r     gzip.Reader
	br    bytes.Reader
	probe [1]byte
}

var gzipDecoders = sync.Pool{New: func() any { return new(gzipDecoder) }}

func gzipDecode(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 {
		return dst, errEmpty
	}
	d := gzipDecoders.Get().(*gzipDecoder)
	defer gzipDecoders.Put(d)
	d.br.Reset(src)
	defer d.br.Reset(nil) // do not retain src

	// Reset parses the first member's header.
	if err := d.r.Reset(&d.br); err != nil {
		return dst, corrupt(err)
	}
	out, err := readAppend(dst, &d.r, limit, gzipSizeHint(src, limit), &d.probe)
	if err != nil {
		return dst, classify(err)
	}
	return out, nil
}

// gzipSizeHint guesses the decompressed size from the trailer's ISIZE field
// (the last member's size mod 2^32). It is only a hint for sizing the first
// allocation: it is capped by what the input could possibly inflate to and
// by the limit, and decoding does not rely on it being right.
func gzipSizeHint(src []byte, limit int) int {
	if len(src) < 18 {
		return 0
	}
	n := uint64(binary.LittleEndian.Uint32(src[len(src)-4:]))
	n = min(n, uint64(len(src))*gzipMaxRatio, uint64(limit))
	return int(n)
}
