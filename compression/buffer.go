package compression

import (
	"errors"
	"io"
)

// Buffer helpers shared by the codecs.

// minGrow is the smallest amount of room a decoder adds when dst runs out.
const minGrow = 4 << 10

// appendWriter is an io.Writer that appends to b. The pooled encoders write
// into one so that their output lands directly in the caller's dst.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// streamEncoder is a pooled compressing writer that writes through an
// appendWriter: gzip's and lz4's.
type streamEncoder interface {
	Reset(io.Writer)
	io.WriteCloser
}

// appendEncode appends the encoding of src to dst with w, writing through
// aw, and leaves aw holding no slice (a pooled encoder must not retain
// dst). On an error it returns dst unchanged, as the codecs' encoders do.
func appendEncode(w streamEncoder, aw *appendWriter, dst, src []byte) ([]byte, error) {
	aw.b = dst
	w.Reset(aw)
	_, err := w.Write(src)
	if err == nil {
		err = w.Close()
	}
	out := aw.b
	aw.b = nil // do not retain dst
	if err != nil {
		return dst, err
	}
	return out, nil
}

// reserve returns dst with room for at least n more bytes. Unlike append it
// allocates exactly len(dst)+n when it has to grow, so that decoders control
// how far past their limit the capacity can go.
func reserve(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	buf := make([]byte, len(dst), len(dst)+n)
	copy(buf, dst)
	return buf
}

// growth returns how much room to add to an output that has produced bytes
// so far and needs at least need more: roughly doubling the output (so
// repeated growth is amortized), at least minGrow, never more than remaining
// (the room left under the limit). need must not exceed remaining.
func growth(produced, need, remaining int) int {
	n := max(produced, need, minGrow)
	return min(n, remaining)
}

// errNoProgress guards readAppend against a reader that returns neither data
// nor an error.
var errNoProgress = errors.New("decompressor made no progress")

// readAppend reads r until io.EOF, appending what it reads to dst. It
// appends at most limit bytes: if r has more, it returns an error wrapping
// ErrTooLarge. hint, if positive, is the expected output size, used to size
// the first allocation. probe is a one-byte scratch buffer owned by the
// caller (a field of a pooled struct, so passing it to r does not allocate).
//
// Reads go straight into dst's spare capacity. When that runs out,
// readAppend first reads a single byte into probe, so that an output which
// exactly fills dst, or exactly reaches the limit, needs no allocation; only
// if that byte arrives does it grow dst.
//
// Errors from r are returned as they are; the caller classifies them.
func readAppend(dst []byte, r io.Reader, limit, hint int, probe *[1]byte) ([]byte, error) {
	base := len(dst)
	end := base + limit // the caller keeps this from overflowing
	stalls := 0
	for {
		room := min(cap(dst), end) - len(dst)
		var (
			n   int
			err error
		)
		if room > 0 {
			n, err = r.Read(dst[len(dst) : len(dst)+room])
			dst = dst[:len(dst)+n]
		} else {
			n, err = r.Read(probe[:])
			if n > 0 {
				if len(dst) >= end {
					return dst, tooLarge(limit)
				}
				produced := len(dst) - base
				need := 1
				if hint > produced {
					need = hint - produced
				}
				hint = 0
				dst = reserve(dst, growth(produced, need, end-len(dst)))
				dst = append(dst, probe[0])
			}
		}
		switch {
		case err == io.EOF:
			return dst, nil
		case err != nil:
			return dst, err
		case n == 0:
			if stalls++; stalls > 100 {
				return dst, errNoProgress
			}
		default:
			stalls = 0
		}
	}
}
