package vfs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// A Sync failed by a WithFaults wrapped around another WithFaults of a
// MemFS (a supported stack: Unwrap sees through both) loses what was
// unsynced, as one failed by a single wrapper does: Linux's page cache
// does not care how many wrappers the failing fsync went through. Before,
// the failure was only recorded when the wrapper's file was the MemFS's
// own, so the retried Sync made the lost bytes durable — a kinder disk
// than Linux's.
func TestReview29FailedSyncThroughStackedFaults(t *testing.T) {
	nop := InjectorFunc(func(Op, string) error { return nil })
	for name, wrap := range map[string]func(m *MemFS) FS{
		"outer fails": func(m *MemFS) FS { return WithFaults(WithFaults(m, nop), FailNth(1, OpSync)) },
		"inner fails": func(m *MemFS) FS { return WithFaults(WithFaults(m, FailNth(1, OpSync)), nop) },
		"three deep":  func(m *MemFS) FS { return WithFaults(WithFaults(WithFaults(m, nop), nop), FailNth(1, OpSync)) },
	} {
		t.Run(name, func(t *testing.T) {
			m := NewMem()
			memPut(t, m, "/f", "synced|")
			f := memOpen(t, wrap(m), "/f")
			_, err := f.Write([]byte("lost"))
			require.NoError(t, err)
			require.ErrorIs(t, f.Sync(), ErrInjected)
			require.NoError(t, f.Sync(), "the retry succeeds")
			require.Equal(t, "synced|lost", memRead(t, m, "/f"))
			require.Equal(t, "synced|", memRead(t, m.CrashClone(CrashOptions{}), "/f"))
		})
	}
}
