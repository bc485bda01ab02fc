//go:build windows

package vfs

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBusyRetry: a removal or rename that another program's handle
// refuses (one opened without delete sharing, as os.Open's, or a virus
// scanner's) is tried again until the handle is gone, up to
// busyRetryFor; past that, the refusal is returned.
func TestBusyRetry(t *testing.T) {
	// held creates a file in a new directory and opens it as another
	// program would, without delete sharing.
	held := func(t *testing.T) (name string, h *os.File) {
		name = filepath.Join(t.TempDir(), "f")
		require.NoError(t, os.WriteFile(name, []byte("x"), 0o644))
		h, err := os.Open(name)
		require.NoError(t, err)
		t.Cleanup(func() { h.Close() })
		return name, h
	}
	hook := func(t *testing.T, f func(error)) {
		testHookBusyRetry = f
		t.Cleanup(func() { testHookBusyRetry = nil })
	}
	ops := []struct {
		name string
		op   func(name string) error
		gone func(t *testing.T, name string)
	}{
		{"Remove", func(name string) error { return OS.Remove(name) }, nil},
		{"RemoveAll", func(name string) error { return OS.RemoveAll(filepath.Dir(name)) }, nil},
		{"Rename", func(name string) error { return OS.Rename(name, name+".new") }, func(t *testing.T, name string) {
			_, err := os.Stat(name + ".new")
			require.NoError(t, err)
		}},
	}
	for _, tc := range ops {
		t.Run(tc.name+"/released", func(t *testing.T) {
			name, h := held(t)
			retries := 0
			hook(t, func(err error) {
				require.True(t, isBusy(err), "retried %v", err)
				if retries++; retries == 2 {
					h.Close() // the other program lets go
				}
			})
			require.NoError(t, tc.op(name))
			require.Equal(t, 2, retries)
			_, err := os.Stat(name)
			require.ErrorIs(t, err, fs.ErrNotExist)
			if tc.gone != nil {
				tc.gone(t, name)
			}
		})
	}
	t.Run("kept", func(t *testing.T) {
		name, _ := held(t)
		retries := 0
		hook(t, func(error) { retries++ })
		err := OS.Remove(name)
		require.Error(t, err)
		require.True(t, isBusy(err), "%v", err)
		require.Greater(t, retries, 0)
		_, err = os.Stat(name)
		require.NoError(t, err, "still there")
	})
	t.Run("not busy", func(t *testing.T) {
		hook(t, func(err error) { t.Errorf("retried %v", err) })
		err := OS.Remove(filepath.Join(t.TempDir(), "missing"))
		require.ErrorIs(t, err, fs.ErrNotExist)
	})
}
