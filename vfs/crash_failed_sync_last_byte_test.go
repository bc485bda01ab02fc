package vfs

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCrashFailedSyncOverwriteAtTheEnd: whether a failed Sync lost an
// overwrite, and whether a truncation cuts it off, looks at every byte
// below the size, not the first ones only: a synced byte overwritten at
// the end of the file (its last, below the cut) with another, before the
// Sync failed, keeps the file undurable through later Syncs and a cut to
// its synced size; written with the same byte, it lost nothing. The other
// tests overwrite byte 0 only: a comparison of the first half of the
// bytes (or all but the last) passed them. Short files (synced content
// kept whole) and long ones (undo records) alike.
func TestCrashFailedSyncOverwriteAtTheEnd(t *testing.T) {
	for _, synced := range []string{"synced|", strings.Repeat("s", 500) + "|"} {
		t.Run(fmt.Sprint(len(synced)), func(t *testing.T) {
			last := int64(len(synced) - 1)
			for _, b := range []string{"X", synced[last:]} {
				m, f := failingSyncFile(t, "/f", synced)
				_, err := f.WriteAt([]byte(b), last)
				require.NoError(t, err)
				require.ErrorIs(t, f.Sync(), ErrInjected)
				memWrite(t, f, "later")
				require.NoError(t, f.Sync())
				if b == "X" {
					require.Equal(t, synced, crashRead(t, m, "/f"), "its last byte overwritten: still failed")
				} else {
					require.Equal(t, synced+"later", crashRead(t, m, "/f"), "its last byte overwritten with the same: nothing lost")
				}
			}

			// The last byte below a cut to the synced size, overwritten
			// before the failed Sync: the cut keeps it, and ends nothing.
			m, g := failingSyncFile(t, "/g", synced+"cut")
			_, err := g.WriteAt([]byte("X"), last)
			require.NoError(t, err)
			require.ErrorIs(t, g.Sync(), ErrInjected)
			require.NoError(t, g.Truncate(int64(len(synced))))
			memWrite(t, g, "more")
			require.NoError(t, g.Sync())
			require.Equal(t, synced+"cut", crashRead(t, m, "/g"), "an overwrite of the last byte below the cut: still failed")
		})
	}
}
