package log

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// Readers run while rolls fail and unseal the active segment again (its
// indexes mapped by the seal, then back on the heap): each read and
// OffsetForTime sees the records appended before it, whole (run with
// -race).
func TestRollFailsUnderReaders(t *testing.T) {
	ctx := context.Background()
	var armed atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpCreate && filepath.Ext(name) == ".timeindex" {
			return syscall.EMFILE
		}
		return nil
	}))
	cfg := Config{SegmentBytes: 2000, IndexIntervalBytes: 1}
	l, err := Open("/p", cfg, Options{FS: fsys})
	require.NoError(t, err)
	defer l.Close()
	const ts = 1_700_000_000_000
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr atomic.Pointer[string]
	fail := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		readErr.CompareAndSwap(nil, &msg)
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				end := l.LogEndOffset()
				for o := int64(0); o < end; o++ {
					data, err := l.Read(o, 1, end)
					if err != nil || len(data) == 0 {
						fail("read at %d (end %d): %v", o, end, err)
						return
					}
					off, ok, err := l.OffsetForTime(ts + o)
					if err != nil || !ok || off != o {
						fail("OffsetForTime(%d) = %d, %v, %v (end %d)", ts+o, off, ok, err, end)
						return
					}
				}
			}
		}()
	}
	failed := 0
	for i := int64(0); i < 300; i++ {
		armed.Store(i%3 == 0)
		v := "v"
		if i%5 == 0 {
			v = string(make([]byte, 400))
		}
		_, err := l.Append(ctx, valueBatch(t, ts+l.LogEndOffset(), v), AppendOptions{})
		if err != nil {
			require.ErrorIs(t, err, ErrRollFailed)
			require.NotErrorIs(t, err, ErrLogFenced)
			failed++
		}
	}
	close(stop)
	wg.Wait()
	if p := readErr.Load(); p != nil {
		t.Fatal(*p)
	}
	require.Positive(t, failed, "no roll failed")
	require.Greater(t, len(*l.segs.Load()), 1, "no roll succeeded")
}
