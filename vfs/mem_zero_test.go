package vfs

import (
	"io"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The zero MemFS (a var, a &MemFS{} in a runnel.Config) is an empty file
// system, ready to use, as NewMem's: MkdirAll, List, Stat, Usage and
// CrashClone panicked on its nil root, and Create answered "file does not
// exist" for a name in its root.
func TestZeroMemFS(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   func() *MemFS
	}{
		{"zero", func() *MemFS { return &MemFS{} }},
		{"NewMem", NewMem},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.fs()
			require.Zero(t, m.Usage())
			require.Zero(t, m.Allocated())
			names, err := m.List("/")
			require.NoError(t, err)
			require.Empty(t, names)
			st, err := m.Stat("/")
			require.NoError(t, err)
			require.True(t, st.IsDir())
			require.NoError(t, m.MkdirAll("/d", 0o755))
			f, err := m.Create("/d/f")
			require.NoError(t, err)
			_, err = f.Write([]byte("hello"))
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())
			require.NoError(t, m.SyncDir("/d"))
			require.NoError(t, m.SyncDir("/"))
			require.NoError(t, m.Rename("/d/f", "/d/g"))
			require.NoError(t, m.SyncDir("/d"))
			l, err := m.Lock("/lock")
			require.NoError(t, err)
			_, err = m.Lock("/lock")
			require.Error(t, err, "a second Lock of the same name")
			require.NoError(t, l.Close())
			require.Equal(t, int64(5), m.Usage())

			c := m.CrashClone(CrashOptions{})
			g, err := c.Open("/d/g")
			require.NoError(t, err)
			b, err := io.ReadAll(io.NewSectionReader(g, 0, 5))
			require.NoError(t, err)
			require.Equal(t, "hello", string(b))
			require.NoError(t, g.Close())
			require.NoError(t, m.Remove("/d/g"))
			require.NoError(t, m.RemoveAll("/d"))
		})
	}
}

// The zero MemFS's first calls may come at once: one root for them all.
func TestZeroMemFSConcurrentFirstUse(t *testing.T) {
	var m MemFS
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { require.NoError(t, m.MkdirAll("/d"+string(rune('a'+i)), 0o755)) })
	}
	wg.Wait()
	names, err := m.List("/")
	require.NoError(t, err)
	require.Len(t, names, 8)
}
