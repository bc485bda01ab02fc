package runnel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/log"
)

// TestRelativeDirSurvivesChdir: a broker opened on a relative Dir
// keeps its data where Open found it when the process changes its working
// directory afterwards (t.Chdir, a daemon's chdir("/")): a roll, a new
// topic and Close land in the directory the broker locked, not in one of
// the same name under the new working directory.
func TestRelativeDirSurvivesChdir(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	b, err := Open(Config{Dir: "data", TopicDefaults: log.Config{SegmentBytes: 100}})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "before")

	other := t.TempDir()
	require.NoError(t, os.Chdir(other))
	for i := range 5 {
		produce(t, b, "t", 0, fmt.Sprint("after", i)) // rolls: SegmentBytes 100
	}
	require.NoError(t, b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 1}))
	produce(t, b, "u", 0, "u0")
	require.NoError(t, b.Close())

	_, err = os.Stat(filepath.Join(other, "data"))
	require.ErrorIs(t, err, os.ErrNotExist, "nothing written under the new working directory")
	require.NoError(t, os.Chdir(base))
	b, err = Open(Config{Dir: filepath.Join(base, "data")})
	require.NoError(t, err)
	defer b.Close()
	require.ElementsMatch(t, []string{"t", "u"}, b.Topics())
	off, err := b.ListOffset(ctx, "t", 0, -1)
	require.NoError(t, err)
	require.EqualValues(t, 6, off.Offset)
}
