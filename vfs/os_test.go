package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The OS FS (os.go) on every system.

// OpenOS opens an existing file read-only: its content reads, a write
// through it fails; a missing file is an error matching fs.ErrNotExist,
// and not created; a name too long matches ErrNameTooLong.
func TestOpenOS(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "f")
	f, err := OS.Create(name)
	require.NoError(t, err)
	_, err = f.Write([]byte("abc"))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	g, err := OpenOS(name)
	require.NoError(t, err)
	defer g.Close()
	b := make([]byte, 3)
	_, err = g.ReadAt(b, 0)
	require.NoError(t, err)
	require.Equal(t, "abc", string(b))
	_, err = g.Write([]byte("x"))
	require.Error(t, err, "a write through a read-only file")

	missing := filepath.Join(dir, "missing")
	_, err = OpenOS(missing)
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = OS.Stat(missing)
	require.ErrorIs(t, err, fs.ErrNotExist, "OpenOS created the file")

	if onWine() {
		return // Wine answers a name too long as not found (see NameTooLong)
	}
	_, err = OpenOS(filepath.Join(dir, strings.Repeat("x", MaxNameLen+1)))
	require.ErrorIs(t, err, ErrNameTooLong)
}

// Closing a Lock drops its file from the process's table (held): the
// table does not grow with each Lock taken and closed.
func TestOSLockCloseEmptiesTheTable(t *testing.T) {
	dir := t.TempDir()
	held.Lock()
	before := len(held.files)
	held.Unlock()
	for range 3 {
		l, err := OS.Lock(filepath.Join(dir, "LOCK"))
		require.NoError(t, err)
		require.NoError(t, l.Close())
	}
	held.Lock()
	defer held.Unlock()
	require.Len(t, held.files, before)
}

// TestOSFileCloseRacingIO closes an OS file while goroutines read
// and write it (a segment's .log deleted by retention while consumers'
// fetches read it and an append writes it): Close returns, and each call
// returns, with the file's error (os.ErrClosed) once it lost the race.
//
// On Windows, Go's os.File (go1.26.8; older versions unchecked) takes a reference and the
// read lock of the handle for a ReadAt or WriteAt, then its write lock;
// a Close that begins between the two (while the call waits for another
// ReadAt's write lock, say) makes the call fail without giving back the
// reference it took, and the Close then waits for that reference for
// ever. Under Wine, with 40 rounds, this test hung in 3 runs of 6 (at
// rounds 2, 10 and 25), each hang turned into a failure by a bound of a minute.
// On Linux it passes either way. 300 rounds (100 with -short): about
// eight times (two and a half) the 40 that hung there one run in two.
func TestOSFileCloseRacingIO(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 100
	}
	dir := t.TempDir()
	data := make([]byte, 4096)
	for round := range rounds {
		name := filepath.Join(dir, "f")
		f, err := OS.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 5)
		for g := range 5 {
			wg.Go(func() {
				<-start
				buf := make([]byte, 512)
				for i := 0; ; i++ {
					var err error
					if g == 0 {
						_, err = f.WriteAt(buf, int64(i%8)*512)
					} else {
						_, err = f.ReadAt(buf, int64(i%8)*512)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		close(start)
		time.Sleep(time.Millisecond) // let the calls begin: the race is with calls in progress
		closed := make(chan error, 1)
		go func() { closed <- f.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatalf("round %d: Close: %v", round, err)
			}
		case <-time.After(time.Minute): // a hang guard (vfs's tests cannot import testkit.HangGuard)
			t.Fatalf("round %d: Close did not return in a minute (a ReadAt or WriteAt racing it kept a reference to the handle)", round)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("round %d: a ReadAt or WriteAt did not return in a minute after Close", round)
		}
		close(errs)
		for err := range errs {
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("round %d: a call racing Close: %v, want os.ErrClosed", round, err)
			}
		}
		if err := OS.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
}
