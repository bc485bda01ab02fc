package compression

import (
	"bytes"
	"encoding/binary"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// lz4: the LZ4 frame format (KIP-57) via github.com/pierrec/lz4/v4.
//
// Frames are written with 64 KiB independent blocks, as Kafka's Java
// KafkaLZ4BlockOutputStream does, plus a content checksum (which the Java
// reader accepts). Writers and readers are pooled and run without extra
// goroutines. The reader allocates a block buffer of the size the frame
// header announces, at most 4 MiB, from the library's own pool; that is the
// fixed cost a hostile header can cause on top of the output limit.

type lz4Encoder struct {
	w  *lz4.Writer
	aw appendWriter
}

var lz4Encoders = sync.Pool{New: func() any {
	e := new(lz4Encoder)
	e.w = lz4.NewWriter(&e.aw)
	// The options are valid constants, so Apply cannot fail.
	_ = e.w.Apply(
		lz4.BlockSizeOption(lz4.Block64Kb),
		lz4.ConcurrencyOption(1),
		lz4.ChecksumOption(true),
		lz4.CompressionLevelOption(lz4.Fast),
	)
	return e
}}

func lz4Encode(dst, src []byte) ([]byte, error) {
	e := lz4Encoders.Get().(*lz4Encoder)
	e.aw.b = dst
	e.w.Reset(&e.aw)
	_, err := e.w.Write(src)
	if err == nil {
		err = e.w.Close()
	}
	out := e.aw.b
	e.aw.b = nil // do not retain dst
	lz4Encoders.Put(e)
	if err != nil {
		return dst, err
	}
	return out, nil
}

type lz4Decoder struct {
	r     *lz4.Reader
	br    bytes.Reader
	probe [1]byte
}

var lz4Decoders = sync.Pool{New: func() any {
	d := new(lz4Decoder)
	d.r = lz4.NewReader(&d.br)
	_ = d.r.Apply(lz4.ConcurrencyOption(1))
	return d
}}

func lz4Decode(dst, src []byte, limit int) ([]byte, error) {
	if len(src) == 0 {
		return dst, errEmpty
	}
	d := lz4Decoders.Get().(*lz4Decoder)
	defer lz4Decoders.Put(d)
	d.br.Reset(src)
	d.r.Reset(&d.br)
	out, err := readAppend(dst, d.r, limit, lz4SizeHint(src, limit), &d.probe)
	// Release src and hand the block buffer back to the library's pool.
	d.br.Reset(nil)
	d.r.Reset(&d.br)
	if err != nil {
		return dst, classify(err)
	}
	return out, nil
}

// lz4MaxRatio bounds how much an LZ4 block can expand (a match of n bytes
// costs at least one byte per 255 of length).
const lz4MaxRatio = 255

// lz4SizeHint guesses the decompressed size to size the first allocation:
// the frame's content size if its header has one (the Java client's does
// not), else four times the input. It is capped by the most the input could
// decode to and by the limit; decoding does not rely on it.
func lz4SizeHint(src []byte, limit int) int {
	n := 4 * uint64(len(src))
	// Magic (4 bytes), FLG, BD, then the optional 8-byte content size.
	if len(src) >= 14 && binary.LittleEndian.Uint32(src) == 0x184d2204 && src[4]&0x08 != 0 {
		n = binary.LittleEndian.Uint64(src[6:])
	}
	return int(min(n, uint64(len(src))*lz4MaxRatio, uint64(limit)))
}
