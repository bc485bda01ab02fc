package vfs

import (
	"bytes"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// Trim racing the file's other users (run it with -race): a writer that
// appends, syncs, truncates and rewrites (each byte written stamped with a
// generation that a truncation bumps, so that a byte changed in place
// shows), views taken meanwhile — which must never change afterwards —,
// Trims from another goroutine and from the writer, and crash clones
// between the writer's operations, which must hold what its last Sync
// left. It passes on the merged code; a trim that gave the chunk back its
// room without copying it (views pinned the old array) fails it.
func TestMemTrimRaces(t *testing.T) {
	m := NewMem()
	f := memCreate(t, m, "/f")
	require.NoError(t, m.SyncDir("/"))
	rng := rand.New(rand.NewPCG(1, 2))
	var (
		opMu   sync.Mutex // the writer's operations, and the clones between them
		synced []byte     // the file as of its last Sync
		cur    []byte     // the file now
		gen    byte
	)
	stamp := func(off, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte((off+i)*31) + gen
		}
		return b
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	var viewErrs, cloneErrs []string
	var errMu sync.Mutex
	wg.Add(3)
	go func() { // views: each must stay as it was taken
		defer wg.Done()
		type held struct{ v, was []byte }
		var views []held
		r := rand.New(rand.NewPCG(3, 4))
		for {
			select {
			case <-done:
				for _, h := range views {
					if !bytes.Equal(h.v, h.was) {
						errMu.Lock()
						viewErrs = append(viewErrs, "a view changed")
						errMu.Unlock()
					}
				}
				return
			default:
			}
			size, err := f.Size()
			if err != nil || size == 0 {
				continue
			}
			off := r.Int64N(size)
			n := min(int(size-off), 1+r.IntN(3000))
			v, err := f.(PrefixViewer).ViewPrefix(off, n)
			if err != nil {
				continue // truncated meanwhile
			}
			views = append(views, held{v, bytes.Clone(v)})
			if len(views) > 200 {
				for _, h := range views[:100] {
					if !bytes.Equal(h.v, h.was) {
						errMu.Lock()
						viewErrs = append(viewErrs, "a view changed")
						errMu.Unlock()
					}
				}
				views = append(views[:0], views[100:]...)
			}
		}
	}()
	go func() { // trims
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				f.(Trimmer).Trim()
			}
		}
	}()
	go func() { // crash clones between the writer's operations
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			opMu.Lock()
			c := m.CrashClone(CrashOptions{})
			want := bytes.Clone(synced)
			opMu.Unlock()
			if got, err := readWhole(c, "/f"); err != nil || !bytes.Equal(got, want) {
				errMu.Lock()
				cloneErrs = append(cloneErrs, "a crash clone lost or changed synced bytes")
				errMu.Unlock()
			}
		}
	}()
	ops := 3000
	if testing.Short() {
		ops = 1000
	}
	for range ops {
		opMu.Lock()
		switch k := rng.IntN(10); {
		case k < 6:
			p := stamp(len(cur), 1+rng.IntN(6000))
			_, err := f.Write(p)
			require.NoError(t, err)
			cur = append(cur, p...)
		case k < 7:
			require.NoError(t, f.Sync())
			synced = bytes.Clone(cur)
		case k < 8 && len(cur) > 0:
			size := rng.IntN(len(cur))
			require.NoError(t, f.Truncate(int64(size)))
			cur = cur[:size]
			gen++
		default:
			f.(Trimmer).Trim()
		}
		opMu.Unlock()
		if len(cur) > 1<<20 {
			opMu.Lock()
			require.NoError(t, f.Truncate(0))
			require.NoError(t, f.Sync())
			cur, synced = nil, nil
			gen++
			opMu.Unlock()
		}
	}
	close(done)
	wg.Wait()
	require.Empty(t, viewErrs)
	require.Empty(t, cloneErrs)
	require.Equal(t, string(cur), memRead(t, m, "/f"))
}

// readWhole reads the file name of fsys, whole.
func readWhole(fsys FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	_, err = f.ReadAt(b, 0)
	return b, err
}
