package runnel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestCreatePartitionsFailureLeavesNoDirectory: a CreatePartitions whose
// open of a new partition fails (its directory made, a file in it not)
// leaves none of the new partitions' directories, the failing one's
// included, as a CreateTopic that fails leaves none of its own.
func TestCreatePartitionsFailureLeavesNoDirectory(t *testing.T) {
	errInjected := errors.New("injected")
	mem := vfs.NewMem()
	b := open(t, Config{FS: vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && strings.HasPrefix(filepath.Base(filepath.Dir(name)), "t-3") {
			return errInjected
		}
		return nil
	}))})
	require.NoError(t, b.CreateTopic(t.Context(), "t", log.TopicConfig{Partitions: 2}))
	require.ErrorIs(t, b.CreatePartitions(t.Context(), "t", 5), errInjected)
	n, err := b.Partitions(t.Context(), "t")
	require.NoError(t, err)
	require.Equal(t, 2, n)
	names, err := mem.List(b.root)
	require.NoError(t, err)
	for _, name := range names {
		require.NotContains(t, []string{"t-2", "t-3", "t-4"}, name, "left behind")
	}
}

// TestCreatePanicLeavesNothing: a CreateTopic or CreatePartitions during
// which the file system panics (here a wrapper's, on the create of a
// file of a partition's, one partition after another; on disk a hook in
// one of eight partitions opening at once) panics with its value and
// leaves what a failure leaves: no partition open, no directory of those
// opened or begun, and the call succeeds afterwards.
func TestCreatePanicLeavesNothing(t *testing.T) {
	for _, onDisk := range []bool{false, true} {
		for _, call := range []string{"CreateTopic", "CreatePartitions"} {
			t.Run(fmt.Sprintf("disk=%v/%s", onDisk, call), func(t *testing.T) {
				ctx := t.Context()
				var armed atomic.Bool
				topic, panicAt, n := "t", 2, 4
				if call == "CreatePartitions" {
					topic, panicAt, n = "g", 3, 6
				}
				if onDisk {
					panicAt, n = 5, 3*partitionsAtOnce
				}
				mem := vfs.NewMem()
				cfg := Config{FS: vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
					if armed.Load() && op == vfs.OpCreate && filepath.Base(filepath.Dir(name)) == fmt.Sprintf("%s-%d", topic, panicAt) {
						panic("the FS panics")
					}
					return nil
				})), Dir: "/d"}
				if onDisk {
					cfg = Config{Dir: t.TempDir()}
				}
				b := open(t, cfg)
				require.NoError(t, b.CreateTopic(ctx, "g", log.TopicConfig{Partitions: 2}))
				create := func() error {
					if call == "CreateTopic" {
						return b.CreateTopic(ctx, topic, log.TopicConfig{Partitions: n})
					}
					return b.CreatePartitions(ctx, topic, n)
				}
				var w *atOnceWatch
				if onDisk {
					// Once eight are under way: as the hook of watchOpens,
					// which then counts out.
					w = newAtOnceWatch(t, partitionsAtOnce)
					testHookOpenPartition = func(tp string, id int) {
						w.run(fmt.Sprintf("%s-%d", tp, id), nil)
						if armed.Load() && tp == topic && id == panicAt {
							panic("the FS panics")
						}
					}
					t.Cleanup(func() { testHookOpenPartition = nil })
				}
				armed.Store(true)
				var panicked any
				func() {
					defer func() { panicked = recover() }()
					_ = create()
				}()
				armed.Store(false)
				if onDisk {
					// On a goroutine of its own: its value and its stack kept.
					var p *PanicError
					require.IsType(t, p, panicked)
					p = panicked.(*PanicError)
					require.Contains(t, string(p.Stack), "runnel.TestCreatePanicLeavesNothing.", "the hook's stack")
					panicked = p.Value
				}
				require.Equal(t, "the FS panics", panicked)
				if w != nil {
					w.check(t, call)
					testHookOpenPartition = nil
				}
				var names []string
				if onDisk {
					entries, err := os.ReadDir(cfg.Dir)
					require.NoError(t, err)
					for _, e := range entries {
						names = append(names, e.Name())
					}
				} else {
					var err error
					names, err = mem.List("/d")
					require.NoError(t, err)
				}
				for _, name := range names {
					if strings.HasPrefix(name, topic+"-") && name != "g-0" && name != "g-1" {
						require.Fail(t, "left behind", name)
					}
				}
				require.Equal(t, []string{"g"}, b.Topics())
				got, err := b.Partitions(ctx, "g")
				require.NoError(t, err)
				require.Equal(t, 2, got)
				require.NoError(t, create(), "the call again")
				require.NoError(t, b.Close())
			})
		}
	}
}
