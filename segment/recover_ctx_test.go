package segment

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// TestRecoverContextCancelled: RecoverContext whose ctx ends in its scan
// of a 10 MiB .log stops at the next 4 MiB mark, cuts nothing, and
// distrusts its indexes, which Close removes; the next Open asks for
// recovery, and Recover rebuilds the segment whole.
func TestRecoverContextCancelled(t *testing.T) {
	mem := vfs.NewMem()
	const dir = "/seg"
	if err := mem.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := mustCreate(t, mem, dir, 0, Config{})
	var next int64
	for s.Size() < 10<<20 {
		b := simpleBatch(t, next, 4, 16<<10)
		if err := s.Append(b); err != nil {
			t.Fatal(err)
		}
		next = b.NextOffset()
	}
	size := s.Size()
	mustClose(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var reads atomic.Int64
	var armed atomic.Bool // counting from RecoverContext on
	fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpRead && filepath.Ext(name) == LogSuffix && reads.Add(1) == 5 {
			cancel()
		}
		return nil
	}))
	s, _, err := Open(fsys, dir, 0, Config{}, OpenOptions{Active: true})
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	_, err = s.RecoverContext(ctx, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RecoverContext: %v, want context.Canceled", err)
	}
	if n := reads.Load(); n > 200 {
		t.Fatalf("%d reads: the scan went on past its 4 MiB mark", n)
	}
	if d := s.IndexDistrusted(); !d.Offset || !d.Time {
		t.Fatalf("IndexDistrusted %+v after a rebuild cut short", d)
	}
	mustClose(t, s)
	for _, suf := range []string{IndexSuffix, TimeIndexSuffix} {
		if _, err := mem.Stat(filepath.Join(dir, FileName(0, suf))); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s after Close: %v, want it removed", suf, err)
		}
	}
	if got := readSize(t, mem, logPath(dir, 0)); got != size {
		t.Fatalf(".log of %d bytes after a cut Recover, want %d", got, size)
	}

	s, needs := mustOpen(t, mem, dir, 0, Config{}, true)
	if !needs {
		t.Fatal("Open after a cut Recover: no recovery asked for")
	}
	res, err := s.Recover(0)
	if err != nil || res.Truncated != 0 || s.NextOffset() != next {
		t.Fatalf("Recover: %v, %v, next %d; want nothing cut, next %d", res, err, s.NextOffset(), next)
	}
}
