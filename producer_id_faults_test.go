package runnel

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/vfs"
)

// InitProducerID calls race each other while the writes of the id
// counter fail at random at every step (the temporary file's create,
// write, fsync, close, the rename, the directory's fsync): a failed call
// wraps the file system's error in ErrStorage (retriable) and hands out
// no id, and no id is handed out twice — by the broker as it goes on, or
// by one opened on what a crash at the end leaves (each tail mode, with
// and without reordering): after the crash the next id is past every id
// handed out before.
func TestInitProducerIDFaultsNoDuplicate(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 4
	}
	ops := []vfs.Op{vfs.OpCreate, vfs.OpWrite, vfs.OpSync, vfs.OpClose, vfs.OpRename, vfs.OpSyncDir, vfs.OpRemove}
	tails := []vfs.TailMode{vfs.TailDrop, vfs.TailZeros, vfs.TailTorn, vfs.TailGarbage}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			ctx := context.Background()
			var on atomic.Bool
			var dice sync.Mutex
			rng := rand.New(rand.NewPCG(seed, 25))
			tmp, counter := filepath.Join(crashRoot, metaTmp), filepath.Join(crashRoot, producerIDs)
			mem := vfs.NewMem()
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if !on.Load() || (name != tmp && name != counter && name != crashRoot) {
					return nil
				}
				for _, o := range ops {
					if o == op {
						dice.Lock()
						fail := rng.IntN(4) == 0
						dice.Unlock()
						if fail {
							return syscall.ENOSPC
						}
					}
				}
				return nil
			}))
			b, err := Open(crashConfig(fsys))
			require.NoError(t, err)
			defer b.Close()
			on.Store(true)

			var (
				mu      sync.Mutex
				ids     = map[int64]bool{}
				failed  int
				callers sync.WaitGroup
			)
			for range 8 {
				callers.Go(func() {
					for range 25 {
						id, epoch, err := b.InitProducerID(ctx)
						mu.Lock()
						if err != nil {
							failed++
							mu.Unlock()
							if !api.IsRetriable(err) || !errors.Is(err, ErrStorage) || !errors.Is(err, syscall.ENOSPC) {
								t.Errorf("InitProducerID failed with %v: want ErrStorage, retriable, with ENOSPC", err)
							}
							continue
						}
						if ids[id] || epoch != 0 {
							t.Errorf("id %d (epoch %d) handed out twice", id, epoch)
						}
						ids[id] = true
						mu.Unlock()
					}
				})
			}
			callers.Wait()
			on.Store(false)
			maxID := int64(-1)
			for id := range ids {
				maxID = max(maxID, id)
			}
			t.Logf("%d ids handed out (up to %d), %d calls failed", len(ids), maxID, failed)
			// The live broker goes on past them.
			id, _, err := b.InitProducerID(ctx)
			require.NoError(t, err)
			require.Greater(t, id, maxID, "the broker's next id")
			maxID = id

			for i, tail := range tails {
				for _, reorder := range []bool{false, true} {
					clone := mem.CrashClone(vfs.CrashOptions{Tail: tail, Reorder: reorder,
						Rand: rand.New(rand.NewPCG(seed, uint64(i)))})
					b2, err := Open(crashConfig(clone))
					require.NoError(t, err, "open after a crash (%v, reorder %v)", tail, reorder)
					id, _, err := b2.InitProducerID(ctx)
					require.NoError(t, err)
					require.Greater(t, id, maxID, "the first id after a crash (%v, reorder %v)", tail, reorder)
					require.NoError(t, b2.Close())
				}
			}
		})
	}
}
