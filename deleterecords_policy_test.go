package runnel

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// TestDeleteRecordsPolicyCheckedWithTheDelete: DeleteRecords checks the
// topic's cleanup policy and deletes under one hold of the partition's
// log, so that a config change to compact alone comes before the check
// (and the deletion is refused) or after the deletion, never between
// them. The hook runs an AlterTopicConfig to compact right after the
// check: it must not get through until the deletion is done. (It is
// given a while to: no hook tells that it waits for the partition.)
func TestDeleteRecordsPolicyCheckedWithTheDelete(t *testing.T) {
	ctx := context.Background()
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a", "b", "c")

	altered := make(chan error, 1)
	var alteredBeforeDelete bool
	testHookDeleteRecordsChecked = func() {
		go func() { altered <- b.AlterTopicConfig(ctx, "t", log.Config{CleanupPolicy: log.Compact}) }()
		select {
		case err := <-altered:
			altered <- err
			alteredBeforeDelete = true
		case <-time.After(200 * time.Millisecond):
		}
	}
	defer func() { testHookDeleteRecordsChecked = nil }()

	low, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.NoError(t, testkit.Await(t, altered, "AlterTopicConfig's answer"))
	testHookDeleteRecordsChecked = nil
	if errors.Is(err, ErrPolicyViolation) {
		listed, lerr := b.ListOffset(ctx, "t", 0, api.Earliest)
		require.NoError(t, lerr)
		require.Zero(t, listed.Offset, "refused, and nothing deleted")
		return
	}
	require.NoError(t, err)
	require.EqualValues(t, 2, low)
	require.False(t, alteredBeforeDelete, "records deleted from a topic that a config change had made compact only")

	// Compacted only now: refused.
	_, err = b.DeleteRecords(ctx, "t", 0, 3)
	require.ErrorIs(t, err, ErrPolicyViolation)
}

// TestDeleteRecordsHeedsAnEndedCtx: a DeleteRecords whose ctx has ended
// deletes nothing and says why, as the other admin calls do (Kafka's
// admin client fails a call whose deadline passed before it was sent);
// it deleted the records and answered as if nothing had happened.
func TestDeleteRecordsHeedsAnEndedCtx(t *testing.T) {
	b := open(t, Config{})
	require.NoError(t, b.CreateTopic(context.Background(), "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a", "b", "c")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := b.DeleteRecords(ctx, "t", 0, 2)
	require.ErrorIs(t, err, context.Canceled)
	info, err := b.DescribeTopic(context.Background(), "t")
	require.NoError(t, err)
	require.Equal(t, int64(0), info.Partitions[0].LogStartOffset, "records deleted under an ended ctx")

	low, err := b.DeleteRecords(context.Background(), "t", 0, 2)
	require.NoError(t, err)
	require.Equal(t, int64(2), low)
}
