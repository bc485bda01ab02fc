package log

import (
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestFencedLineSaysWhatToDo: the "log fenced" line (Error) says
// what happened and what to do about it: the log
// refuses writes until it is opened again, which a broker does not do on
// its own (an operator fixes the cause and reopens it). It said only what
// happened (dir=, err=).
func TestFencedLineSaysWhatToDo(t *testing.T) {
	for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync} {
		t.Run(op.String(), func(t *testing.T) {
			var failing atomic.Bool
			fs := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(o vfs.Op, name string) error {
				if o == op && failing.Load() && strings.HasSuffix(name, ".log") {
					return vfs.ErrInjected
				}
				return nil
			}))
			lines := make(chan map[string]string, 1)
			logger := slog.New(testkit.LineFunc(func(r slog.Record) {
				if r.Message != "log fenced" {
					return
				}
				attrs := map[string]string{"level": r.Level.String()}
				r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
				select {
				case lines <- attrs:
				default: // logged once; a second would be another test's failure
				}
			}))
			l, err := Open("/d/t-0", Config{Sync: SyncAlways}, Options{FS: fs, Logger: logger})
			require.NoError(t, err)
			defer l.Close()
			failing.Store(true)
			_, err = l.Append(t.Context(), valueBatch(t, 1_700_000_000_000, "fails"), AppendOptions{})
			require.ErrorIs(t, err, ErrLogFenced)
			// The line of a failed fsync goes out once its round has
			// ended, maybe after the append returned (see syncOnce).
			var attrs map[string]string
			select {
			case attrs = <-lines:
			case <-time.After(10 * time.Second):
				t.Fatal(`no "log fenced" line`)
			}
			require.Equal(t, "ERROR", attrs["level"])
			require.Contains(t, attrs["err"], "injected")
			require.Contains(t, attrs["then"], "refused until the log is opened again")
			require.Contains(t, attrs["then"], "Close and Open")
		})
	}
}
