package compression

import (
	"bytes"
	"encoding/binary"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// lz4: the LZ4 frame format (KIP-57) via github.com/pierrec/lz4/v4.
//
// Frames are written as Kafka's Java KafkaLZ4BlockOutputStream writes
// them: 64 KiB independent blocks, no block checksums and no content
// checksum (the record batch's CRC-32C covers the payload, and an xxh32
// pass over it cost 14% of a compressed produce's CPU). Frames with a
// content checksum, which runnel wrote until 2026-12, and with block
// checksums are read, and their checksums checked, as well. Writers (a pool
// for each level, see level.go) and readers are pooled and run without
// extra goroutines. The reader allocates a block buffer of the size the frame
// header announces, at most 4 MiB, from the library's own pool; that is the
// fixed cost a hostile header can cause on top of the output limit.

type lz4Encoder struct {
	w  *lz4.Writer
	aw appendWriter
}

// lz4Encoders holds the writers of each level, indexed as lz4Level
// numbers them: 0 for Fast (Kafka's default), n for Leveln.
var lz4Encoders [lz4MaxLevel - lz4DefaultLevel + 1]sync.Pool

// lz4Levels are pierrec's levels, indexed as lz4Encoders.
var lz4Levels = [len(lz4Encoders)]lz4.CompressionLevel{
	lz4.Fast, lz4.Level1, lz4.Level2, lz4.Level3, lz4.Level4,
	lz4.Level5, lz4.Level6, lz4.Level7, lz4.Level8,
}

func lz4Encode(dst, src []byte, level int) ([]byte, error) {
	pool := &lz4Encoders[level]
	e, _ := pool.Get().(*lz4Encoder)
	if e == nil {
		e = new(lz4Encoder)
		e.w = lz4.NewWriter(&e.aw)
		// The options are valid constants, so Apply cannot fail.
		_ = e.w.Apply(
			lz4.BlockSizeOption(lz4.Block64Kb),
			lz4.ConcurrencyOption(1),
			lz4.ChecksumOption(false),
			lz4.CompressionLevelOption(lz4Levels[level]),
		)
	}
	out, err := appendEncode(e.w, &e.aw, dst, src)
	pool.Put(e)
	return out, err
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
	// A reader that decodes a frame of dependent blocks keeps the frame's
	// last 64 KiB as a dictionary, and does not forget it on Reset nor at
	// the next frame: a later block that refers before its own start would
	// then read that old output instead of failing. Only frames of
	// independent blocks, which is what Kafka clients write (Java's reader
	// refuses any other), go through the pool; anything else gets a reader
	// of its own, dropped afterwards.
	var d *lz4Decoder
	if lz4Independent(src) {
		d = lz4Decoders.Get().(*lz4Decoder)
		defer lz4Decoders.Put(d)
	} else {
		d = lz4Decoders.New().(*lz4Decoder)
	}
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

// LZ4 frame format constants (github.com/lz4/lz4, doc/lz4_Frame_format.md).
const (
	lz4FrameMagic     = 0x184d2204
	lz4SkippableMagic = 0x184d2a50 // the low 4 bits are free
	lz4FlagIndep      = 0x20       // FLG: blocks are independent
	lz4FlagBlockSum   = 0x10       // FLG: each block has a checksum
	lz4FlagSize       = 0x08       // FLG: an 8-byte content size follows BD
	lz4FlagContentSum = 0x04       // FLG: a content checksum ends the frame
	lz4FlagDictID     = 0x01       // FLG: a 4-byte dictionary id follows
	lz4Uncompressed   = 1 << 31    // block size: the block is stored as is
)

// lz4Independent reports whether src is a sequence of LZ4 frames (and
// skippable frames) whose every frame declares independent blocks. It walks
// the frame headers and block sizes without decompressing anything, and
// says false for whatever it cannot walk to the end (including legacy
// frames, whose blocks the reader treats as dependent).
func lz4Independent(src []byte) bool {
	for len(src) > 0 {
		if len(src) < 8 {
			return false
		}
		magic := binary.LittleEndian.Uint32(src)
		if magic&^0xf == lz4SkippableMagic {
			n := uint64(binary.LittleEndian.Uint32(src[4:]))
			if n > uint64(len(src)-8) {
				return false
			}
			src = src[8+n:]
			continue
		}
		if magic != lz4FrameMagic || src[4]&lz4FlagIndep == 0 {
			return false
		}
		n, ok := lz4FrameLen(src)
		if !ok {
			return false
		}
		src = src[n:]
	}
	return true
}

// lz4FrameLen walks the frame (magic 0x184d2204) that src starts with,
// through its header, block sizes and checksums, and returns its length;
// ok is false if src ends before the frame does. It decompresses and
// checks nothing.
func lz4FrameLen(src []byte) (n int, ok bool) {
	if len(src) < 7 {
		return 0, false
	}
	flg := src[4]
	h := 7 // magic, FLG, BD, header checksum
	if flg&lz4FlagSize != 0 {
		h += 8
	}
	if flg&lz4FlagDictID != 0 {
		h += 4
	}
	if len(src) < h {
		return 0, false
	}
	rest := src[h:]
	for {
		if len(rest) < 4 {
			return 0, false
		}
		size := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if size == 0 { // end mark
			break
		}
		n := uint64(size &^ lz4Uncompressed)
		if n == 0 {
			return 0, false
		}
		if flg&lz4FlagBlockSum != 0 {
			n += 4
		}
		if n > uint64(len(rest)) {
			return 0, false
		}
		rest = rest[n:]
	}
	if flg&lz4FlagContentSum != 0 {
		if len(rest) < 4 {
			return 0, false
		}
		rest = rest[4:]
	}
	return len(src) - len(rest), true
}

// lz4CheckKafka refuses what lz4Decode takes but Kafka's Java reader
// (Lz4BlockInputStream, formerly KafkaLZ4BlockInputStream) refuses:
// anything but a frame of magic 0x184d2204 first (a legacy frame, magic
// 0x184c2102, or a skippable one), a frame of dependent blocks (FLG bit 5
// clear), and anything after the first frame: Kafka's reader stops at its
// end, so records that go on into a second frame are cut short for it. It
// refuses all bytes after the first frame, also those Kafka's reader would
// merely ignore (empty or skippable frames, garbage), which no Kafka
// client writes and which lz4Decode would read on into. The rest of what
// Kafka's reader checks (FLG version 1, reserved FLG and BD bits clear,
// no dictionary id, a block size index of 4 to 7, the header checksum,
// block sizes within the maximum, block and content checksums), the
// library's reader checks too. It walks the frame's header and block
// sizes only: a few byte reads per 64 KiB block.
func lz4CheckKafka(src []byte) error {
	if len(src) < 7 {
		return corruptf("lz4 frame header cut short (%d bytes)", len(src))
	}
	if m := binary.LittleEndian.Uint32(src); m != lz4FrameMagic {
		return corruptf("lz4 magic %#08x where Kafka's reader takes only a frame's (%#08x)", m, lz4FrameMagic)
	}
	if src[4]&lz4FlagIndep == 0 {
		return corruptf("lz4 frame of dependent blocks, which Kafka's reader refuses")
	}
	n, ok := lz4FrameLen(src)
	if !ok {
		return corruptf("lz4 frame cut short")
	}
	if n != len(src) {
		return corruptf("%d bytes after the first lz4 frame, where Kafka's reader stops", len(src)-n)
	}
	return nil
}
