package vfs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// WithFaults of a nil FS (a nil *MemFS, a field meant and not set)
// panics at once, saying so: the FS it returned panicked on a nil
// pointer at its first operation, deep in the Open of a store, once the
// injector had counted that operation.
func TestWithFaultsNilFS(t *testing.T) {
	var mem *MemFS
	for _, fs := range []FS{nil, mem} {
		require.PanicsWithValue(t, "runnel/vfs: WithFaults of a nil FS ("+typeName(fs)+")", func() {
			WithFaults(fs, Count())
		})
	}
	// A nil inj still returns fs itself, as documented.
	m := NewMem()
	require.Same(t, m, WithFaults(m, nil).(*MemFS))
}

func typeName(fs FS) string {
	if fs == nil {
		return "<nil>"
	}
	return "*vfs.MemFS"
}
