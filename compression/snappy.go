package compression

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/golang/snappy"
	"github.com/klauspost/compress/s2"
)

// snappy: encoding via github.com/klauspost/compress/s2, decoding via
// github.com/golang/snappy.
//
// Encoding writes one raw snappy block with s2.EncodeSnappy, as franz-go
// does: standard snappy that any snappy decoder reads, written faster than
// golang/snappy's encoder on text-like batches. Java's xerial
// SnappyInputStream reads a stream without its magic as a raw block.
// Decoding stays with golang/snappy, whose decoder refuses what is not
// standard snappy: s2.Decode also reads S2's extensions (a copy with
// offset 0 repeats the last offset), so it would take blocks that every
// other snappy reader refuses as corrupt (and it was not consistently
// faster).
// Decoding also accepts the xerial framing that Java's SnappyOutputStream
// (and so the Java producer) writes:
//
//	header: "\x82SNAPPY\x00", 4-byte version, 4-byte compatible version
//	then, repeated: 4-byte big-endian chunk length, raw snappy block
//
// The two cannot be confused: a raw block starting with the xerial magic
// would begin with a copy (tag 0x4e) before any literal, which is invalid.
//
// Snappy blocks state their decoded length up front; it is checked against
// the limit, and against the most the block's size could decode to, before
// anything is allocated.

var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// xerialHeaderLen is the magic plus the two 4-byte version fields.
const xerialHeaderLen = 16

// snappyMaxRatio bounds a snappy block's expansion: the densest element is a
// 3-byte copy of 64 bytes (21.3:1), so 32 leaves ample slack.
const snappyMaxRatio = 32

func snappyEncode(dst, src []byte) ([]byte, error) {
	n := snappy.MaxEncodedLen(len(src))
	if n < 0 {
		return dst, fmt.Errorf("%w: input of %d bytes is too large for a snappy block", ErrTooLarge, len(src))
	}
	// golang/snappy's bound, above s2's (and so the same inputs refused as
	// before): s2 writes into the reserved room and does not allocate.
	dst = reserve(dst, n)
	out := s2.EncodeSnappy(dst[len(dst):len(dst)+n:len(dst)+n], src)
	return dst[:len(dst)+len(out)], nil
}

func snappyDecode(dst, src []byte, limit int) ([]byte, error) {
	if bytes.HasPrefix(src, xerialMagic) {
		return xerialDecode(dst, src, limit)
	}
	out, err := snappyDecodeBlock(dst, src, limit, limit, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// xerialDecode decodes a xerial-framed stream (see above).
func xerialDecode(dst, src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderLen {
		return dst, corruptf("xerial header truncated to %d bytes", len(src))
	}
	base := len(dst)
	out := dst
	rest := src[xerialHeaderLen:]
	for len(rest) > 0 {
		if len(rest) < 4 {
			return dst, corruptf("xerial chunk length truncated at offset %d", len(src)-len(rest))
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return dst, corruptf("xerial chunk of %d bytes at offset %d, but only %d bytes left", n, len(src)-len(rest)-4, len(rest))
		}
		var err error
		out, err = snappyDecodeBlock(out, rest[:n], limit-(len(out)-base), limit, len(out)-base)
		if err != nil {
			return dst, err
		}
		rest = rest[n:]
	}
	return out, nil
}

// snappyDecodeBlock appends the decoding of one raw block. remaining is how
// many bytes the limit still allows, limit the limit for error messages, and
// produced how much this call has appended before, used to grow dst
// geometrically across xerial chunks.
func snappyDecodeBlock(dst, block []byte, remaining, limit, produced int) ([]byte, error) {
	if len(block) == 0 {
		return dst, errEmpty
	}
	n, err := snappy.DecodedLen(block)
	if err != nil {
		if errors.Is(err, snappy.ErrTooLarge) {
			return dst, fmt.Errorf("%w: %w", tooLarge(limit), err)
		}
		return dst, corrupt(err)
	}
	if n > remaining {
		return dst, tooLarge(limit)
	}
	if uint64(n) > uint64(len(block))*snappyMaxRatio { // not in int: it wraps at 64 MiB on 32-bit platforms
		return dst, corruptf("snappy block of %d bytes claims to decode to %d", len(block), n)
	}
	if cap(dst)-len(dst) < n {
		dst = reserve(dst, growth(produced, n, remaining))
	}
	out, err := snappy.Decode(dst[len(dst):len(dst)+n], block)
	if err != nil {
		return dst, corrupt(err)
	}
	if len(out) != n {
		return dst, corruptf("snappy block decoded to %d bytes, header said %d", len(out), n)
	}
	return dst[:len(dst)+n], nil
}
