package runnel

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestTopicIDs: a topic gets an ID when it is created, keeps it across
// config changes, new partitions and restarts, and a topic deleted and
// created again under its name gets a new one; a fetch that names the old
// ID gets ErrUnknownTopicID (Kafka's UNKNOWN_TOPIC_ID), not the new
// topic's records. ListOffset gives, with the offset, the ID of the topic
// it is in.
func TestTopicIDs(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := Config{Dir: "/data", FS: mem}
	b, err := Open(cfg)
	require.NoError(t, err)
	defer func() { b.Close() }()
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
	require.NoError(t, b.CreateTopic(ctx, "b", log.TopicConfig{Partitions: 1}))
	describe := func(name string) TopicInfo {
		t.Helper()
		info, err := b.DescribeTopic(ctx, name)
		require.NoError(t, err)
		return info
	}
	id := describe("a").ID
	require.False(t, id.IsZero())
	require.NotEqual(t, id, describe("b").ID)

	require.NoError(t, b.AlterTopicConfig(ctx, "a", log.Config{RetentionBytes: 1 << 20}))
	require.NoError(t, b.CreatePartitions(ctx, "a", 2))
	require.Equal(t, id, describe("a").ID)
	require.NoError(t, b.Close())
	b, err = Open(cfg)
	require.NoError(t, err)
	require.Equal(t, id, describe("a").ID, "after a restart")
	require.Len(t, describe("a").Partitions, 2)

	fetch := func(fp api.FetchPartition) api.FetchedPartition {
		t.Helper()
		fp.MaxBytes = 1 << 20
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{fp}})
		require.NoError(t, err)
		return resp.Partitions[0]
	}
	produce(t, b, "a", 0, "old")
	got := fetch(api.FetchPartition{Topic: "a"})
	require.NoError(t, got.Err)
	require.Equal(t, id, got.TopicID)
	got = fetch(api.FetchPartition{Topic: "a", TopicID: id})
	require.NoError(t, got.Err)
	require.Equal(t, []string{"old"}, values(t, got.Records))

	listed, err := b.ListOffset(ctx, "a", 0, api.Latest)
	require.NoError(t, err)
	require.Equal(t, api.ListedOffset{Offset: 1, Timestamp: -1, TopicID: id}, listed)

	require.NoError(t, b.DeleteTopic(ctx, "a"))
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
	produce(t, b, "a", 0, "new")
	newID := describe("a").ID
	require.NotEqual(t, id, newID)
	got = fetch(api.FetchPartition{Topic: "a", TopicID: id})
	require.ErrorIs(t, got.Err, ErrUnknownTopicID)
	require.EqualValues(t, 100, api.Code(got.Err))
	require.True(t, api.IsRetriable(got.Err))
	require.Empty(t, got.Records)
	got = fetch(api.FetchPartition{Topic: "a", TopicID: newID})
	require.NoError(t, got.Err)
	require.Equal(t, []string{"new"}, values(t, got.Records))
	for _, ts := range []int64{api.Earliest, api.Latest, api.MaxTimestamp, 0} {
		listed, err := b.ListOffset(ctx, "a", 0, ts)
		require.NoError(t, err)
		require.Equal(t, newID, listed.TopicID, "ListOffset(%d) gives the ID of the topic its offset is in", ts)
	}

	// In memory too.
	m := open(t, Config{})
	require.NoError(t, m.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
	info, err := m.DescribeTopic(ctx, "a")
	require.NoError(t, err)
	require.False(t, info.ID.IsZero())
}

// TestTopicIDGivenToOldRecords: a topic recorded before topic IDs (its
// record has none) gets one when the broker opens, written to its
// record, so that it keeps it from then on.
func TestTopicIDGivenToOldRecords(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	cfg := Config{Dir: "/data", FS: mem}
	path := oldTopicRecord(t, mem)

	b, err := Open(cfg)
	require.NoError(t, err)
	info, err := b.DescribeTopic(ctx, "a")
	require.NoError(t, err)
	require.False(t, info.ID.IsZero())
	require.NoError(t, b.Close())

	m, err := (&Broker{fs: mem}).readMeta(path)
	require.NoError(t, err)
	require.Equal(t, info.ID, m.ID, "written to the record")
	b, err = Open(cfg)
	require.NoError(t, err)
	defer b.Close()
	again, err := b.DescribeTopic(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, info.ID, again.ID)
	resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "a", MaxBytes: 1 << 20}}})
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, values(t, resp.Partitions[0].Records))
}

// oldTopicRecord makes a broker directory /data on mem whose topic "a"
// (one partition, holding the record "kept") is recorded as before topic
// IDs, with none, and returns the path of that record.
func oldTopicRecord(t *testing.T, mem *vfs.MemFS) string {
	t.Helper()
	b, err := Open(Config{Dir: "/data", FS: mem})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(context.Background(), "a", log.TopicConfig{Partitions: 1}))
	produce(t, b, "a", 0, "kept")
	require.NoError(t, b.Close())
	return writeTopicRecord(t, mem, map[string]any{"name": "a", "config": map[string]any{"Partitions": 1}})
}

// writeTopicRecord writes rec, as JSON, as the record of topic "a" in the
// broker directory /data on mem, and returns its path.
func writeTopicRecord(t *testing.T, mem *vfs.MemFS, rec map[string]any) string {
	t.Helper()
	path := filepath.Join("/data", topicsDir, "a.json")
	data, err := json.Marshal(rec)
	require.NoError(t, err)
	f, err := mem.Create(path)
	require.NoError(t, err)
	_, err = f.Write(data)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path
}
