package runnel_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/vfs"
)

// TestProducerIDCounterRepairCrash: a crash at any file-system operation
// of an Open that sets a producer id counter behind the partitions' ids
// past them (the disk dies there: vfs.FailFrom), with the unsynced
// directory operations reordered and the unsynced tails dropped or torn,
// leaves a directory that opens, whose counter is not corrupt, and whose
// next InitProducerID hands out an id past every one the partitions know
// (0 to 2), as does a second Open's after that one's Close: the counter,
// lost ("removed") or a backup's ("rolled back"), and the repair's
// temporary file are never left so that an id is handed out twice, nor
// so that Open fails.
func TestProducerIDCounterRepairCrash(t *testing.T) {
	ctx := t.Context()
	// prepare writes ids 0 to 2 into a partition and then takes the
	// counter back.
	prepare := func(t *testing.T, mem *vfs.MemFS, change func(*vfs.MemFS)) {
		t.Helper()
		b, err := runnel.Open(runnel.Config{Dir: "data", FS: mem})
		require.NoError(t, err)
		require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
		for range 3 {
			p, err := producer.New(b)
			require.NoError(t, err)
			require.NoError(t, p.ProduceSync(ctx, &record.Record{Topic: "a", Value: []byte("old")}))
			require.NoError(t, p.Close())
		}
		require.NoError(t, b.Close())
		change(mem)
	}
	changes := map[string]func(*vfs.MemFS){
		"removed": func(mem *vfs.MemFS) { require.NoError(t, mem.Remove("data/producer-ids")) },
		"rolled back": func(mem *vfs.MemFS) {
			f, err := mem.Create("data/producer-ids")
			require.NoError(t, err)
			_, err = f.Write([]byte("1\n"))
			require.NoError(t, err)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Close())
			require.NoError(t, mem.SyncDir("data"))
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			// The repairing Open's operations, counted.
			mem := vfs.NewMem()
			prepare(t, mem, change)
			count := vfs.Count()
			b, err := runnel.Open(runnel.Config{Dir: "data", FS: vfs.WithFaults(mem, count)})
			require.NoError(t, err)
			ops := count.N()
			require.NoError(t, b.Close())
			require.Positive(t, ops)
			for k := 1; k <= ops+1; k++ {
				mem := vfs.NewMem()
				prepare(t, mem, change)
				if b, err := runnel.Open(runnel.Config{Dir: "data", FS: vfs.WithFaults(mem, vfs.FailFrom(k))}); err == nil {
					_ = b.Close() // the disk died: its errors are expected
				}
				for _, tail := range []vfs.TailMode{vfs.TailDrop, vfs.TailTorn} {
					for seed := range uint64(3) {
						clone := mem.CrashClone(vfs.CrashOptions{Tail: tail, Reorder: true, Rand: rand.New(rand.NewPCG(uint64(k), seed))})
						where := fmt.Sprintf("crash at operation %d of %d, tail %v, seed %d", k, ops, tail, seed)
						for reopen := range 2 {
							b, err := runnel.Open(runnel.Config{Dir: "data", FS: clone})
							require.NoError(t, err, "%s, open %d", where, reopen)
							id, _, err := b.InitProducerID(ctx)
							require.NoError(t, err, where)
							require.GreaterOrEqual(t, id, int64(3+reopen), "%s, open %d: an id a partition knows, handed out again", where, reopen)
							require.NoError(t, b.Close(), where)
						}
					}
				}
			}
		})
	}
}
