package compression

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReview40SnappyHugeLength: a snappy block whose header claims 2 GiB
// is refused as too large for the limit, without decoding, on every
// platform: on 32-bit ones the snappy library itself calls the length too
// large (its ErrTooLarge, past math.MaxInt32), a path of snappyDecodeBlock
// that only GOARCH=386 runs (the session 40 coverage pass found it
// unreached on amd64); on 64-bit ones the limit does.
func TestReview40SnappyHugeLength(t *testing.T) {
	for _, block := range [][]byte{
		{0x80, 0x80, 0x80, 0x80, 0x08, 0}, // 1<<31
		{0xff, 0xff, 0xff, 0xff, 0x0f, 0}, // 1<<32 - 1
	} {
		_, err := Snappy.AppendDecode(nil, block, 0)
		require.ErrorIs(t, err, ErrTooLarge)
		require.NotErrorIs(t, err, ErrCorrupt)
		var e *Error
		require.True(t, errors.As(err, &e), "%T", err)
	}
}
