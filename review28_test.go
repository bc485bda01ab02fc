package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
)

// TestHiddenDirectoryIsNotALogs: a directory named like a partition
// (<topic>-<N>) that holds a hidden directory — a user's git repository,
// say — is not a stray partition: a log never makes a subdirectory, and
// only the files an OS leaves (.DS_Store, ._x, .nfsXXXX) are ignored
// there. Open removed it with everything in it (a '.' name counted as an
// OS's file, a directory's as much as a file's), and so did a CreateTopic
// whose partition it would be, where a directory holding anything but a
// log's files fails with log.ErrNotLogDir.
func TestHiddenDirectoryIsNotALogs(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	files := []string{"/data/notes-2/.git/HEAD", "/data/release-0/.git/config"}
	for _, f := range files {
		require.NoError(t, mem.MkdirAll(filepath.Dir(f), 0o755))
		w, err := mem.Create(f)
		require.NoError(t, err)
		_, err = w.Write([]byte("the user's"))
		require.NoError(t, err)
		require.NoError(t, w.Close())
	}
	kept := func() {
		t.Helper()
		for _, f := range files {
			_, err := mem.Stat(f)
			require.NoError(t, err, "%s was removed", f)
		}
	}
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	defer b.Close()
	kept()
	err = b.CreateTopic(ctx, "release", log.TopicConfig{Partitions: 1})
	require.ErrorIs(t, err, log.ErrNotLogDir)
	require.Contains(t, err.Error(), ".git")
	require.Empty(t, b.Topics())
	kept()
}

// TestAlterConfigOfAnInvalidNameIsInvalidTopic: AlterTopicConfig and
// UpdateTopicConfig of a name no topic can have answer ErrInvalidTopic, as
// DescribeTopic does, and as Kafka's AlterConfigs and
// IncrementalAlterConfigs do: its controller validates a topic
// resource's name before it looks the topic up
// (ControllerConfigurationValidator; ZooKeeper's
// AdminZkClient.validateTopicConfig did too), INVALID_TOPIC_EXCEPTION
// before UNKNOWN_TOPIC_OR_PARTITION. They answered ErrUnknownTopic.
func TestAlterConfigOfAnInvalidNameIsInvalidTopic(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	for _, name := range []string{"a b", "..", "a/b", strings.Repeat("n", 250)} {
		_, err := b.DescribeTopic(ctx, name)
		require.ErrorIs(t, err, ErrInvalidTopic, "DescribeTopic(%q)", name)
		err = b.AlterTopicConfig(ctx, name, log.Config{})
		require.ErrorIs(t, err, ErrInvalidTopic, "AlterTopicConfig(%q)", name)
		require.NotErrorIs(t, err, ErrUnknownTopic)
		require.EqualValues(t, 17, api.Code(err), "INVALID_TOPIC_EXCEPTION")
		err = b.UpdateTopicConfig(ctx, name, func(*log.Config) {})
		require.ErrorIs(t, err, ErrInvalidTopic, "UpdateTopicConfig(%q)", name)
	}
	// A valid name that no topic has is unknown, as before.
	require.ErrorIs(t, b.AlterTopicConfig(ctx, "nope", log.Config{}), ErrUnknownTopic)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "nope", func(*log.Config) {}), ErrUnknownTopic)
}
