package runnel

import (
	"errors"
	"path/filepath"
	"strings"
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
