package compression

import (
	"errors"
	"strconv"
	"testing"
	"unsafe"

	"github.com/runnel/runnel/internal/testkit"
)

// TestSnappyEncodeTooLarge: Error's doc says its Err wraps one of the
// package's sentinels; the error of a snappy input too large for a block
// (over 4 GiB) wrapped none. The input is a slice header that claims the
// size over one byte of memory: the encoder refuses it by its length
// before it reads anything.
func TestSnappyEncodeTooLarge(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("needs a 64-bit int")
	}
	if testkit.RaceEnabled {
		t.Skip("checkptr (on under -race) refuses a slice longer than its memory")
	}
	var b byte
	n := int64(1)<<32 + 1
	huge := unsafe.Slice(&b, int(n)) // 64-bit only: skipped above
	dst := make([]byte, 3, 8)
	out, err := Snappy.AppendEncode(dst, huge)
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendEncode of %d bytes: %v, want a *Error matching ErrTooLarge", len(huge), err)
	}
	if len(out) != 3 {
		t.Fatalf("dst changed: len %d", len(out))
	}
}
