package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestReview37OSFileCloseRacingIO closes an OS file while goroutines read
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
// rounds 2, 10 and 25), each hang turned into a failure by a 10 s bound.
// On Linux it passes either way. 300 rounds (100 with -short): about
// eight times (two and a half) the 40 that hung there one run in two.
func TestReview37OSFileCloseRacingIO(t *testing.T) {
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
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return in 10 s (a ReadAt or WriteAt racing it kept a reference to the handle)", round)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: a ReadAt or WriteAt did not return in 10 s after Close", round)
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
