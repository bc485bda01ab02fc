package runnel

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestOpenRemovesLeftTemporaryRecordFiles: a topic's record and the
// producer id counter are written to runnel.tmp in their directory, then
// renamed into place. A write that fails part way (its rename, and the
// removal of the temporary file after it: an I/O error), or a crash
// before the rename, leaves runnel.tmp behind. Open skipped it, and kept
// it until the next write in that directory replaced it: for good, in a
// broker whose topics do not change. Open removes it now, and the
// <topic>.json.tmp and producer-ids.tmp that a runnel before 2026-11-30
// left so.
func TestOpenRemovesLeftTemporaryRecordFiles(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		dir  string
		call func(*Broker) error
	}{
		{"create-topic", filepath.Join(crashRoot, topicsDir), func(b *Broker) error {
			return b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1})
		}},
		{"alter-topic-config", filepath.Join(crashRoot, topicsDir), func(b *Broker) error {
			return b.AlterTopicConfig(ctx, "kept", log.Config{SegmentBytes: 1 << 20})
		}},
		{"producer-id", crashRoot, func(b *Broker) error {
			_, _, err := b.InitProducerID(ctx)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			tmp := filepath.Join(tc.dir, metaTmp)
			var armed atomic.Bool
			fsys := vfs.WithFaults(mem, vfs.InjectorFunc(func(op vfs.Op, name string) error {
				if armed.Load() && name == tmp && (op == vfs.OpRename || op == vfs.OpRemove) {
					return vfs.ErrInjected
				}
				return nil
			}))
			b, err := Open(crashConfig(fsys))
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "kept", log.TopicConfig{Partitions: 1}))
			armed.Store(true)
			require.ErrorIs(t, tc.call(b), vfs.ErrInjected)
			armed.Store(false)
			require.NoError(t, b.Close())
			_, err = mem.Stat(tmp)
			require.NoError(t, err, "the failed write left its temporary file")

			// An older runnel's, left by a crash.
			older := []string{filepath.Join(crashRoot, topicsDir, "kept.json.tmp"), filepath.Join(crashRoot, producerIDs+".tmp")}
			for _, name := range older {
				f, err := mem.Create(name)
				require.NoError(t, err)
				_, err = f.Write([]byte("{"))
				require.NoError(t, err)
				require.NoError(t, f.Close())
			}

			b, err = Open(crashConfig(mem))
			require.NoError(t, err)
			require.Equal(t, []string{"kept"}, b.Topics())
			require.NoError(t, b.Close())
			for _, name := range append(older, tmp) {
				_, err = mem.Stat(name)
				require.ErrorIs(t, err, fs.ErrNotExist, "%s left after Open", name)
			}
		})
	}
}
