package vfs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/require"
)

// Each exported method of a zero MemFS readies it, not only the ones
// TestZeroMemFS happens to call first: a zero MemFS whose first call is
// any one of them answers as NewMem's does.
func TestZeroMemFSEachMethodFirst(t *testing.T) {
	errOf := func(err error) string {
		if err == nil {
			return "nil"
		}
		return fmt.Sprintf("%v (not exist %v)", err, errors.Is(err, fs.ErrNotExist))
	}
	for _, tc := range []struct {
		name  string
		first func(m *MemFS) string
	}{
		{"Create", func(m *MemFS) string {
			f, err := m.Create("/f")
			if err != nil {
				return errOf(err)
			}
			return errOf(f.Close())
		}},
		{"Open", func(m *MemFS) string { _, err := m.Open("/f"); return errOf(err) }},
		{"OpenRoot", func(m *MemFS) string { _, err := m.Open("/"); return errOf(err) }},
		{"Remove", func(m *MemFS) string { return errOf(m.Remove("/f")) }},
		{"RemoveRoot", func(m *MemFS) string { return errOf(m.Remove("/")) }},
		{"RemoveAll", func(m *MemFS) string { return errOf(m.RemoveAll("/d")) }},
		{"RemoveAllRoot", func(m *MemFS) string { return errOf(m.RemoveAll("/")) }},
		{"Rename", func(m *MemFS) string { return errOf(m.Rename("/f", "/g")) }},
		{"RenameRoot", func(m *MemFS) string { return errOf(m.Rename("/", "/g")) }},
		{"MkdirAll", func(m *MemFS) string { return errOf(m.MkdirAll("/d", 0o755)) }},
		{"List", func(m *MemFS) string { names, err := m.List("/"); return fmt.Sprint(names, errOf(err)) }},
		{"Stat", func(m *MemFS) string {
			st, err := m.Stat("/")
			if err != nil {
				return errOf(err)
			}
			return fmt.Sprint(st.IsDir())
		}},
		{"SyncDir", func(m *MemFS) string { return errOf(m.SyncDir("/")) }},
		{"Lock", func(m *MemFS) string {
			l, err := m.Lock("/lock")
			if err != nil {
				return errOf(err)
			}
			_, err2 := m.Lock("/lock") // held: refused
			return fmt.Sprint(errOf(l.Close()), err2 != nil)
		}},
		{"Usage", func(m *MemFS) string { return fmt.Sprint(m.Usage()) }},
		{"Allocated", func(m *MemFS) string { return fmt.Sprint(m.Allocated()) }},
		{"CrashClone", func(m *MemFS) string {
			c := m.CrashClone(CrashOptions{})
			names, err := c.List("/")
			return fmt.Sprint(names, errOf(err), errOf(c.MkdirAll("/d", 0o755)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.first(NewMem())
			require.Equal(t, want, tc.first(&MemFS{}))
			// and the zero MemFS is usable after it, as NewMem's
			var m MemFS
			tc.first(&m)
			require.NoError(t, m.MkdirAll("/after", 0o755))
			names, err := m.List("/")
			require.NoError(t, err)
			require.Contains(t, names, "after")
		})
	}
}
