package runnel

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestFetchByIDOfDeletedTopic: a fetch that names the ID of a topic
// deleted and not created again gets ErrUnknownTopicID (Kafka's
// UNKNOWN_TOPIC_ID, 100, which fetch v13+ answers for an ID it does not
// know), as it does once the topic is created again, matching
// ErrUnknownTopic too (the name is unknown as well); so does one waiting
// in a long poll when the topic is deleted. A fetch naming no ID gets
// ErrUnknownTopic (UNKNOWN_TOPIC_OR_PARTITION), and so does one naming the
// right ID and a partition the topic does not have.
func TestFetchByIDOfDeletedTopic(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 1}))
	produce(t, b, "a", 0, "x")
	info, err := b.DescribeTopic(ctx, "a")
	require.NoError(t, err)
	id := info.ID
	fetch := func(fp api.FetchPartition) api.FetchedPartition {
		t.Helper()
		resp, err := b.Fetch(ctx, &api.FetchRequest{Partitions: []api.FetchPartition{fp}})
		require.NoError(t, err)
		return resp.Partitions[0]
	}
	got := fetch(api.FetchPartition{Topic: "a", TopicID: id, Partition: 3})
	require.ErrorIs(t, got.Err, ErrUnknownTopic, "the topic is known, its partition 3 is not")
	require.EqualValues(t, 3, api.Code(got.Err))

	require.NoError(t, b.DeleteTopic(ctx, "a"))
	got = fetch(api.FetchPartition{Topic: "a", TopicID: id})
	require.ErrorIs(t, got.Err, ErrUnknownTopicID)
	require.ErrorIs(t, got.Err, ErrUnknownTopic, "the name is unknown too")
	require.EqualValues(t, 100, api.Code(got.Err), "UNKNOWN_TOPIC_ID")
	require.True(t, api.IsRetriable(got.Err))
	require.Contains(t, got.Err.Error(), id.String())
	require.Empty(t, got.Records)
	got = fetch(api.FetchPartition{Topic: "a"})
	require.ErrorIs(t, got.Err, ErrUnknownTopic, "no ID named: the name is unknown")
	require.EqualValues(t, 3, api.Code(got.Err))

	// Deleted while a fetch waits for records.
	require.NoError(t, b.CreateTopic(ctx, "w", log.TopicConfig{Partitions: 1}))
	info, err = b.DescribeTopic(ctx, "w")
	require.NoError(t, err)
	type answer struct {
		resp api.FetchResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := b.Fetch(ctx, &api.FetchRequest{MaxWait: time.Hour, Partitions: []api.FetchPartition{{Topic: "w", TopicID: info.ID}}})
		done <- answer{resp, err}
	}()
	require.NoError(t, b.DeleteTopic(ctx, "w"))
	a := testkit.Await(t, done, "Fetch's answer")
	require.NoError(t, a.err)
	require.ErrorIs(t, a.resp.Partitions[0].Err, ErrUnknownTopicID)
}
