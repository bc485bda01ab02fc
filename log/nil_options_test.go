package log

import (
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// A nil pointer in Options.FS or Options.Clock (a *vfs.MemFS or clock
// meant and not set) is refused with ErrInvalidConfig, as runnel.Open
// refuses it: Open panicked on the nil *vfs.MemFS, and a nil clock
// panicked at its first reading.
func TestOpenNilPointerOptions(t *testing.T) {
	var mem *vfs.MemFS
	var clock *fakeClock
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"FS", Options{FS: mem}},
		{"Clock", Options{FS: vfs.NewMem(), Clock: clock}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l *Log
			var err error
			returnsWithin(t, "Open", func() { l, err = Open("/data/t-0", Config{}, tc.opts) })
			require.ErrorIs(t, err, ErrInvalidConfig)
			require.ErrorContains(t, err, "Options."+tc.name)
			require.Nil(t, l)
		})
	}
}
