package vfs_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"github.com/runnel/runnel/vfs"
)

// A full disk in a test: an injector fails every write to a .log file with
// ENOSPC, and the caller sees what package os would give it, an
// *os.PathError naming the operation and the file, whose cause errors.Is
// finds. Other files, and other operations, go ahead.
func ExampleWithFaults() {
	diskFull := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && strings.HasSuffix(name, ".log") {
			return syscall.ENOSPC
		}
		return nil
	})
	fsys := vfs.WithFaults(vfs.NewMem(), diskFull)

	f := must(fsys.Create("/00000000000000000000.log"))
	defer f.Close()
	_, err := f.Write([]byte("batch"))
	var pathErr *os.PathError
	fmt.Println(errors.As(err, &pathErr), pathErr.Op, pathErr.Path, errors.Is(err, syscall.ENOSPC))
	fmt.Println(err)
	fmt.Println("size", must(f.Size())) // nothing was written

	g := must(fsys.Create("/recovery-point-checkpoint"))
	defer g.Close()
	_, err = g.Write([]byte("0\n"))
	fmt.Println(err)
	// Output:
	// true write /00000000000000000000.log true
	// write /00000000000000000000.log: no space left on device
	// size 0
	// <nil>
}

// A Counter fails the n-th operation of the kinds it is given with
// ErrInjected, which tells an injected fault from a real one. A crash
// test counts a scenario's operations once with Count, then fails each in
// turn.
//
// A failed Sync leaves a MemFS file as Linux may leave one: later Syncs
// succeed and make nothing durable, so a crash keeps only what the last
// good Sync did. A store must not trust a file once its Sync failed.
func ExampleFailNth() {
	mem := vfs.NewMem()
	secondSync := vfs.FailNth(2, vfs.OpSync)
	f := must(vfs.WithFaults(mem, secondSync).Create("/data"))
	defer f.Close()
	check(mem.SyncDir("/"))
	for _, b := range []string{"one;", "two;", "three;"} {
		must(f.Write([]byte(b)))
		err := f.Sync()
		fmt.Println(b, err, errors.Is(err, vfs.ErrInjected))
	}
	fmt.Println(secondSync.N(), "syncs")
	fmt.Printf("after a crash: %q\n", contents(mem.CrashClone(vfs.CrashOptions{}), "/data"))
	// Output:
	// one; <nil> false
	// two; sync /data: runnel/vfs: injected fault true
	// three; <nil> false
	// 3 syncs
	// after a crash: "one;"
}

// A machine crash in a test: CrashClone keeps what was made durable, a
// file's bytes as of its last Sync and a directory's entries as of its
// last SyncDir, and drops the rest. The MemFS itself goes on as it was.
func ExampleMemFS_CrashClone() {
	mem := vfs.NewMem()
	a := must(mem.Create("/a.log"))
	defer a.Close()
	must(a.Write([]byte("acknowledged;")))
	check(a.Sync())
	check(mem.SyncDir("/")) // a.log's name is durable
	must(a.Write([]byte("not synced")))

	b := must(mem.Create("/b.log")) // synced, but its name never was
	defer b.Close()
	must(b.Write([]byte("lost")))
	check(b.Sync())

	crashed := mem.CrashClone(vfs.CrashOptions{})
	for _, fsys := range []*vfs.MemFS{mem, crashed} {
		_, err := fsys.Stat("/b.log")
		fmt.Printf("%v %q b.log missing: %t\n", must(fsys.List("/")), contents(fsys, "/a.log"), errors.Is(err, fs.ErrNotExist))
	}
	// Output:
	// [a.log b.log] "acknowledged;not synced" b.log missing: false
	// [a.log] "acknowledged;" b.log missing: true
}

// must returns v, and panics on err.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// check panics on err.
func check(err error) {
	if err != nil {
		panic(err)
	}
}

// contents returns the bytes of the named file.
func contents(fsys vfs.FS, name string) string {
	f := must(fsys.Open(name))
	defer f.Close()
	return string(must(io.ReadAll(io.NewSectionReader(f, 0, 1<<20))))
}
