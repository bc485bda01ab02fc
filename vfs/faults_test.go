package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOpString(t *testing.T) {
	seen := map[string]bool{}
	for op := OpCreate; op <= OpLock; op++ {
		s := op.String()
		require.NotEmpty(t, s)
		require.False(t, strings.HasPrefix(s, "Op("), "%d has no name", int(op))
		require.False(t, seen[s], "duplicate name %q", s)
		seen[s] = true
	}
	require.Len(t, seen, 14)
	require.Equal(t, "write", OpWrite.String())
	require.Equal(t, "Op(99)", Op(99).String())
	require.Equal(t, "Op(-1)", Op(-1).String())
	require.Panics(t, func() { FailNth(1, Op(99)) })
}

func TestFailNth(t *testing.T) {
	m := NewMem()
	c := FailNth(3, OpWrite)
	w := WithFaults(m, c)
	f, err := w.Create("/f")
	require.NoError(t, err)
	defer f.Close()

	for i := 1; i <= 5; i++ {
		before, err := f.Size()
		require.NoError(t, err)
		var n int
		if i == 4 {
			n, err = f.WriteAt([]byte("at"), before) // WriteAt is a write too
		} else {
			n, err = f.Write([]byte("ab"))
		}
		after, _ := f.Size()
		require.NoError(t, f.Sync()) // not a write: neither counted nor failed
		if i == 3 {
			require.ErrorIs(t, err, ErrInjected)
			var pe *os.PathError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, "write", pe.Op)
			require.Equal(t, "/f", pe.Path)
			require.Zero(t, n)
			require.Equal(t, before, after, "a failed write writes nothing")
			continue
		}
		require.NoError(t, err, "write %d", i)
		require.Equal(t, before+2, after)
	}
	require.Equal(t, 5, c.N())
	require.Equal(t, "ababatab", memRead(t, m, "/f"))
}

func TestFailFromIsSticky(t *testing.T) {
	m := NewMem()
	c := FailFrom(2, OpSync, OpSyncDir)
	w := WithFaults(m, c)
	f, err := w.Create("/f")
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Sync())                     // 1
	require.ErrorIs(t, w.SyncDir("/"), ErrInjected)  // 2
	require.ErrorIs(t, f.Sync(), ErrInjected)        // 3
	require.ErrorIs(t, w.SyncDir("/"), ErrInjected)  // 4
	_, err = f.Write([]byte("other ops still work")) // not counted
	require.NoError(t, err)
	require.Equal(t, 4, c.N())
}

func TestFailAnyOp(t *testing.T) {
	c := FailNth(2) // every operation counts
	w := WithFaults(NewMem(), c)
	f, err := w.Create("/f") // 1
	require.NoError(t, err)
	_, err = w.Stat("/f") // 2
	require.ErrorIs(t, err, ErrInjected)
	_, err = f.Write([]byte("x")) // 3
	require.NoError(t, err)
	require.NoError(t, f.Close()) // 4
	require.Equal(t, 4, c.N())

	never := FailNth(0)
	w = WithFaults(NewMem(), never)
	for range 10 {
		_, err := w.List("/")
		require.NoError(t, err)
	}
	require.Equal(t, 10, never.N())
}

func TestCount(t *testing.T) {
	all, some := Count(), Count(OpCreate, OpRemove)
	both := InjectorFunc(func(op Op, name string) error {
		if err := all.MaybeError(op, name); err != nil {
			return err
		}
		return some.MaybeError(op, name)
	})
	w := WithFaults(NewMem(), both)
	for i := range 3 {
		name := fmt.Sprintf("/f%d", i)
		f, err := w.Create(name)
		require.NoError(t, err)
		memWrite(t, f, "x")
		require.NoError(t, f.Sync())
		require.NoError(t, f.Close())
		require.NoError(t, w.Remove(name))
	}
	require.Equal(t, 15, all.N())
	require.Equal(t, 6, some.N())
}

func TestCounterConcurrent(t *testing.T) {
	c := FailNth(500, OpRead)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if errors.Is(c.MaybeError(OpRead, "x"), ErrInjected) {
					failed.Add(1)
				}
				_ = c.MaybeError(OpWrite, "x")
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 1, failed.Load())
	require.Equal(t, 8000, c.N())
}

func TestInjectorFuncByName(t *testing.T) {
	inj := InjectorFunc(func(op Op, name string) error {
		if op == OpWrite && strings.HasSuffix(name, ".log") {
			return ErrInjected
		}
		return nil
	})
	w := WithFaults(NewMem(), inj)
	a, err := w.Create("/a.log")
	require.NoError(t, err)
	b, err := w.Create("/b.index")
	require.NoError(t, err)
	_, err = a.Write([]byte("x"))
	require.ErrorIs(t, err, ErrInjected)
	memWrite(t, b, "x")
}

// Each operation can be failed, fails before it has any effect, and reports
// the injected error wrapped as the real one would be.
func TestEveryOpInjects(t *testing.T) {
	type env struct {
		m *MemFS
		w FS
		f File // /d/f, opened through w, holding "abc" (synced)
	}
	tests := []struct {
		op     Op
		pathOp string // "" for a LinkError
		do     func(e env) error
		undone func(t *testing.T, e env) // checks that nothing happened
	}{
		{OpCreate, "open", func(e env) error { _, err := e.w.Create("/d/g"); return err },
			func(t *testing.T, e env) { _, err := e.m.Stat("/d/g"); require.ErrorIs(t, err, fs.ErrNotExist) }},
		{OpCreate, "open", func(e env) error { _, err := e.w.Create("/d/f"); return err },
			func(t *testing.T, e env) { require.Equal(t, "abc", memRead(t, e.m, "/d/f")) }},
		{OpOpen, "open", func(e env) error { _, err := e.w.Open("/d/f"); return err }, nil},
		{OpWrite, "write", func(e env) error { _, err := e.f.Write([]byte("x")); return err },
			func(t *testing.T, e env) { require.Equal(t, "abc", memRead(t, e.m, "/d/f")) }},
		{OpWrite, "write", func(e env) error { _, err := e.f.WriteAt([]byte("x"), 10); return err },
			func(t *testing.T, e env) { require.Equal(t, "abc", memRead(t, e.m, "/d/f")) }},
		{OpRead, "read", func(e env) error { _, err := e.f.ReadAt(make([]byte, 1), 0); return err }, nil},
		{OpRead, "read", func(e env) error { _, err := e.f.(Viewer).View(0, 1); return err }, nil},
		{OpRead, "read", func(e env) error { _, err := ReadView(e.f, 0, 1); return err }, nil},
		{OpRead, "read", func(e env) error { _, err := e.f.(PrefixViewer).ViewPrefix(0, 1); return err }, nil},
		{OpRead, "read", func(e env) error { _, err := ReadViewPrefix(e.f, 0, 1); return err }, nil},
		{OpSync, "sync", func(e env) error {
			g, err := e.m.Open("/d/f")
			if err != nil {
				return err
			}
			if _, err := g.Write([]byte("unsynced")); err != nil {
				return err
			}
			return e.f.Sync()
		}, func(t *testing.T, e env) {
			require.Equal(t, "abc", memRead(t, e.m.CrashClone(CrashOptions{}), "/d/f"))
		}},
		{OpTruncate, "truncate", func(e env) error { return e.f.Truncate(1) },
			func(t *testing.T, e env) { require.Equal(t, "abc", memRead(t, e.m, "/d/f")) }},
		{OpClose, "close", func(e env) error { return e.f.Close() }, func(t *testing.T, e env) {
			_, err := e.f.Write([]byte("x"))
			require.ErrorIs(t, err, os.ErrClosed, "the file is closed all the same")
		}},
		{OpRemove, "remove", func(e env) error { return e.w.Remove("/d/f") },
			func(t *testing.T, e env) { require.Equal(t, "abc", memRead(t, e.m, "/d/f")) }},
		{OpRemove, "RemoveAll", func(e env) error { return e.w.RemoveAll("/d") },
			func(t *testing.T, e env) { require.Equal(t, "abc", memRead(t, e.m, "/d/f")) }},
		{OpRename, "", func(e env) error { return e.w.Rename("/d/f", "/d/g") },
			func(t *testing.T, e env) { require.Equal(t, "abc", memRead(t, e.m, "/d/f")) }},
		{OpMkdir, "mkdir", func(e env) error { return e.w.MkdirAll("/d/e", 0o755) },
			func(t *testing.T, e env) { _, err := e.m.Stat("/d/e"); require.ErrorIs(t, err, fs.ErrNotExist) }},
		{OpList, "open", func(e env) error { _, err := e.w.List("/d"); return err }, nil},
		{OpStat, "stat", func(e env) error { _, err := e.w.Stat("/d/f"); return err }, nil},
		{OpSyncDir, "sync", func(e env) error {
			g, err := e.m.Create("/d/g")
			if err != nil {
				return err
			}
			g.Close()
			return e.w.SyncDir("/d")
		}, func(t *testing.T, e env) {
			_, err := e.m.CrashClone(CrashOptions{}).Stat("/d/g")
			require.ErrorIs(t, err, fs.ErrNotExist)
		}},
		{OpLock, "lock", func(e env) error { _, err := e.w.Lock("/d/LOCK"); return err }, func(t *testing.T, e env) {
			l, err := e.m.Lock("/d/LOCK")
			require.NoError(t, err, "not held")
			l.Close()
		}},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprintf("%d-%s", i, tc.op), func(t *testing.T) {
			var armed atomic.Bool
			var calls atomic.Int64
			m := NewMem()
			w := WithFaults(m, InjectorFunc(func(op Op, name string) error {
				if armed.Load() && op == tc.op {
					calls.Add(1)
					return ErrInjected
				}
				return nil
			}))
			require.NoError(t, w.MkdirAll("/d", 0o755))
			require.NoError(t, w.SyncDir("/"))
			f, err := w.Create("/d/f")
			require.NoError(t, err)
			memWrite(t, f, "abc")
			require.NoError(t, f.Sync())
			require.NoError(t, w.SyncDir("/d"))
			e := env{m: m, w: w, f: f}

			armed.Store(true)
			err = tc.do(e)
			armed.Store(false)
			require.ErrorIs(t, err, ErrInjected)
			require.EqualValues(t, 1, calls.Load())
			if tc.pathOp == "" {
				var le *os.LinkError
				require.ErrorAs(t, err, &le)
				require.Equal(t, "rename", le.Op)
			} else {
				var pe *os.PathError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, tc.pathOp, pe.Op)
			}
			if tc.undone != nil {
				tc.undone(t, e)
			}
		})
	}
}

// stubFile hides every optional interface of the file it wraps; the stub
// types below add back the ones withAbilities names.
type stubFile struct{ File }

type (
	stubV struct {
		File
		Viewer
	}
	stubP struct { // a Viewer too
		File
		PrefixViewer
	}
	stubM struct {
		File
		Mapper
	}
	stubVM struct {
		File
		Viewer
		Mapper
	}
	stubPM struct {
		File
		PrefixViewer
		Mapper
	}
)

// withAbilities wraps f in the stub type that has exactly the optional
// interfaces named by abilities (canView or canViewPrefix, which is a
// Viewer too, and canMap), taken from f (Viewer, PrefixViewer) or
// fakeMapper.
func withAbilities(f File, abilities int) File {
	v, _ := f.(Viewer)
	p, _ := f.(PrefixViewer)
	m := fakeMapper{}
	switch abilities {
	case canView:
		return stubV{f, v}
	case canViewPrefix:
		return stubP{f, p}
	case canMap:
		return stubM{f, m}
	case canView | canMap:
		return stubVM{f, v, m}
	case canViewPrefix | canMap:
		return stubPM{f, p, m}
	}
	return stubFile{f}
}

type stubFS struct {
	FS
	wrap func(File) File
}

func (s stubFS) Create(name string) (File, error) {
	f, err := s.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return s.wrap(f), nil
}

type fakeMapper struct{}

func (fakeMapper) Map(int) (*Mapping, error) {
	return nil, &os.PathError{Op: "mmap", Path: "fake", Err: ErrNotSupported}
}

func TestFaultsPreserveInterfaces(t *testing.T) {
	for _, abilities := range []int{0, canView, canViewPrefix, canMap, canView | canMap, canViewPrefix | canMap} {
		t.Run(fmt.Sprintf("abilities=%03b", abilities), func(t *testing.T) {
			// What a file with these abilities is (a PrefixViewer is a
			// Viewer), as the stub is and the wrapper must be.
			want := [3]bool{abilities&(canView|canViewPrefix) != 0, abilities&canViewPrefix != 0, abilities&canMap != 0}
			raw := withAbilities(must[File](t)(NewMem().Create("/f")), abilities)
			_, isV := raw.(Viewer)
			_, isP := raw.(PrefixViewer)
			_, isM := raw.(Mapper)
			require.Equal(t, want, [3]bool{isV, isP, isM})

			c := Count()
			w := WithFaults(stubFS{NewMem(), func(f File) File { return withAbilities(f, abilities) }}, c)
			f, err := w.Create("/f")
			require.NoError(t, err)
			memWrite(t, f, "abc")
			_, isV = f.(Viewer)
			_, isP = f.(PrefixViewer)
			_, isM = f.(Mapper)
			require.Equal(t, want, [3]bool{isV, isP, isM})
			before := c.N()
			if isV {
				b, err := f.(Viewer).View(1, 2)
				require.NoError(t, err)
				require.Equal(t, "bc", string(b))
			}
			if isP {
				b, err := f.(PrefixViewer).ViewPrefix(0, 3)
				require.NoError(t, err)
				require.Equal(t, "abc", string(b))
			}
			if isM {
				_, err := f.(Mapper).Map(1)
				require.ErrorIs(t, err, ErrNotSupported)
			}
			require.Equal(t, before+btoi(isV)+btoi(isP)+btoi(isM), c.N(), "each forwarded call is counted")
		})
	}

	// The real ones: MemFS files are Viewers and PrefixViewers, OS files
	// Mappers.
	w := WithFaults(NewMem(), Count())
	f, err := w.Create("/f")
	require.NoError(t, err)
	_, isV := f.(Viewer)
	_, isP := f.(PrefixViewer)
	_, isM := f.(Mapper)
	require.True(t, isV)
	require.True(t, isP)
	require.False(t, isM)

	w = WithFaults(OS, Count())
	f, err = w.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	_, isV = f.(Viewer)
	_, isP = f.(PrefixViewer)
	_, isM = f.(Mapper)
	require.False(t, isV)
	require.False(t, isP)
	require.True(t, isM)

	require.Equal(t, FS(OS), WithFaults(OS, nil), "a nil Injector wraps nothing")
}

// Map of OS files is injected as well, as a read (OpRead).
func TestFaultsMap(t *testing.T) {
	f, err := OS.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.Write(append([]byte("mapped"), make([]byte, 4090)...))
	require.NoError(t, err)

	fails := WithFaults(OS, FailNth(2, OpRead))
	g, err := fails.Open(f.Name())
	require.NoError(t, err)
	defer g.Close()
	ro, err := g.(Mapper).Map(4096)
	if errors.Is(err, ErrNotSupported) {
		t.Skip("no mmap here")
	}
	require.NoError(t, err)
	require.Equal(t, "mapped", string(ro.Bytes()[:6]))
	require.NoError(t, ro.Close())
	_, err = g.(Mapper).Map(4096)
	require.ErrorIs(t, err, ErrInjected)
	ro, err = g.(Mapper).Map(4096)
	require.NoError(t, err)
	require.NoError(t, ro.Close())
}

// The crash-test workflow: count the operations of a scenario, then fail
// the disk from each of them on, crash, and check that nothing acknowledged
// was lost.
func TestFaultsCrashWorkflow(t *testing.T) {
	record := func(i int) []byte { return []byte(fmt.Sprintf("record %03d;", i)) }
	// scenario appends synced records and returns how many were acknowledged.
	scenario := func(fsys FS) (acked int) {
		if fsys.MkdirAll("/log", 0o755) != nil || fsys.SyncDir("/") != nil {
			return 0
		}
		f, err := fsys.Create("/log/00.log")
		if err != nil {
			return 0
		}
		defer f.Close()
		if fsys.SyncDir("/log") != nil {
			return 0
		}
		for i := range 20 {
			if _, err := f.Write(record(i)); err != nil {
				return acked
			}
			if err := f.Sync(); err != nil {
				return acked
			}
			acked++
		}
		return acked
	}

	c := Count()
	require.Equal(t, 20, scenario(WithFaults(NewMem(), c)))
	total := c.N()
	require.Equal(t, 2+1+1+40+1, total) // mkdir, syncdir; create; syncdir; 20×(write, sync); close

	for k := 1; k <= total; k++ {
		for _, mode := range []TailMode{TailDrop, TailTorn, TailZeros, TailGarbage} {
			m := NewMem()
			acked := scenario(WithFaults(m, FailFrom(k)))
			c := m.CrashClone(CrashOptions{Tail: mode})
			f, err := c.Open("/log/00.log")
			if acked == 0 && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			require.NoError(t, err, "k=%d", k)
			size, err := f.Size()
			require.NoError(t, err)
			got := make([]byte, size)
			_, err = f.ReadAt(got, 0)
			require.True(t, err == nil || err == io.EOF)
			var want []byte
			for i := range acked {
				want = append(want, record(i)...)
			}
			require.True(t, bytes.HasPrefix(got, want), "k=%d %s: acknowledged records lost", k, mode)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A Sync failed by a WithFaults wrapped around another WithFaults of a
// MemFS (a supported stack: Unwrap sees through both) loses what was
// unsynced, as one failed by a single wrapper does: Linux's page cache
// does not care how many wrappers the failing fsync went through. Before,
// the failure was only recorded when the wrapper's file was the MemFS's
// own, so the retried Sync made the lost bytes durable — a kinder disk
// than Linux's.
func TestFailedSyncThroughStackedFaults(t *testing.T) {
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
			memWrite(t, f, "lost")
			require.ErrorIs(t, f.Sync(), ErrInjected)
			require.NoError(t, f.Sync(), "the retry succeeds")
			require.Equal(t, "synced|lost", memRead(t, m, "/f"))
			require.Equal(t, "synced|", memRead(t, m.CrashClone(CrashOptions{}), "/f"))
		})
	}
}

// The first number past the last Op has no name either.
func TestOpStringPastTheLast(t *testing.T) {
	require.Equal(t, "Op(14)", (OpLock + 1).String())
}

// FailFrom and FailNth of a number below 1 never fail, however many
// operations they count.
func TestCounterBelowOneNeverFails(t *testing.T) {
	for _, c := range []*Counter{FailFrom(0), FailFrom(-2), FailNth(0), FailNth(-1, OpWrite)} {
		for op := OpCreate; op <= OpLock; op++ {
			require.NoError(t, c.MaybeError(op, "/f"))
		}
	}
}

// The injector is asked about a rename by its old name.
func TestFaultsRenameAsksByOldName(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/a", "a")
	var names []string
	w := WithFaults(m, InjectorFunc(func(op Op, name string) error {
		if op == OpRename {
			names = append(names, name)
		}
		return nil
	}))
	require.NoError(t, w.Rename("/a", "/b"))
	require.Equal(t, []string{"/a"}, names)
}

// File.Size and File.Name of a WithFaults file are passed through
// unasked: the injector neither counts nor fails them.
func TestFaultsSizeAndNameUnasked(t *testing.T) {
	m := NewMem()
	memPut(t, m, "/f", "abc")
	c := Count()
	f, err := WithFaults(m, c).Open("/f")
	require.NoError(t, err)
	defer f.Close()
	opened := c.N()
	size, err := f.Size()
	require.NoError(t, err)
	require.EqualValues(t, 3, size)
	require.Equal(t, "/f", f.Name())
	require.Equal(t, opened, c.N())

	f2, err := WithFaults(m, FailFrom(2)).Open("/f") // everything after the open fails
	require.NoError(t, err)
	defer f2.Close()
	size, err = f2.Size()
	require.NoError(t, err)
	require.EqualValues(t, 3, size)
}

// TestWithFaultsNilInjector: WithFaults says "A nil inj returns
// fs itself". A nil InjectorFunc, or a nil *Counter (var c *Counter, set
// on some path only), is a nil inj too: WithFaults wrapped it, and the
// first operation panicked calling it.
func TestWithFaultsNilInjector(t *testing.T) {
	m := NewMem()
	var f InjectorFunc
	var c *Counter
	for _, inj := range []Injector{nil, f, c} {
		fs := WithFaults(m, inj)
		require.Same(t, m, fs, "WithFaults(m, %T(nil)) is m", inj)
		require.NotPanics(t, func() { _ = fs.MkdirAll("d", 0o755) })
	}
}
