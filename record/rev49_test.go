package record

import (
	"errors"
	"testing"

	"github.com/runnel/runnel/compression"
)

// TestRev49EmptyBuilderLevel: AppendToLevel's doc promises ErrInvalidLevel
// for a level the codec does not have; an empty builder returns nil for a
// compressed codec (prepare() short-circuits before the check), but the
// error for compression.None (CheckLevel runs first).
func TestRev49EmptyBuilderLevel(t *testing.T) {
	for _, c := range []compression.Codec{compression.None, compression.Gzip} {
		var b Builder
		b.Reset()
		_, err := b.AppendToLevel(nil, c, 1000)
		if !errors.Is(err, compression.ErrInvalidLevel) {
			t.Errorf("%v: empty builder, level 1000: err %v, want ErrInvalidLevel", c, err)
		}
	}
}
