package log

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/segment"
	"github.com/runnel/runnel/vfs"
)

// TestRollUnrollFails: a roll whose new segment could not be
// created removes the new segment's files, syncs the directory and makes
// the old segment active again (unroll). When that directory fsync fails
// (not a directory that could not be opened), or the old segment cannot
// be made writable again (its index files not reopened), the log is
// fenced (ErrLogFenced, not only ErrRollFailed), and the reopened log
// holds every record and takes appends.
func TestRollUnrollFails(t *testing.T) {
	cfg := Config{Sync: SyncAlways}
	for _, c := range []struct {
		name   string
		op     vfs.Op
		suffix string
	}{
		{"syncdir", vfs.OpSyncDir, ""},
		{"unseal", vfs.OpOpen, segment.FileName(0, segment.IndexSuffix)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			createFailed, n := false, 0
			newLog := segment.FileName(3, segment.LogSuffix)
			mem := e.fs
			e.fs = vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if op == vfs.OpCreate && strings.HasSuffix(name, newLog) && !createFailed {
					createFailed = true
					return vfs.ErrInjected
				}
				if createFailed && n == 0 && op == c.op && strings.HasSuffix(name, c.suffix) {
					n++
					return vfs.ErrInjected
				}
				return nil
			}))
			l := e.open(cfg)
			for range 3 {
				appendOK(t, l, valueBatch(t, 1_700_000_000_000, "v"))
			}
			err := l.Roll()
			require.True(t, createFailed)
			require.Equal(t, 1, n)
			require.ErrorIs(t, err, ErrLogFenced)
			require.ErrorIs(t, err, vfs.ErrInjected)
			l.Close()

			e.fs = mem
			l = e.open(cfg)
			defer l.Close()
			require.EqualValues(t, 3, l.LogEndOffset())
			requireWhole(t, l)
			appendOK(t, l, valueBatch(t, 1_700_000_000_000, "w"))
			requireWhole(t, l)
		})
	}
}
