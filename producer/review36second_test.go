package producer_test

import (
	"testing"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/stretchr/testify/require"
)

// TestReview36StaleLargerCountAfterAnUnchangedAnswer: the producer knows
// the topic's 2 partitions; the topic grows to 4, and a look-up reads
// those 4 but answers only after the topic was deleted and created again
// with 2, and after a look-up begun later read those 2, the count the
// producer knew. The look-ups read in the order they began, so the stale
// answer must not take the producer to 4 partitions: a keyed record
// produced once the later look-up answered goes to the topic's 2
// partitions and is delivered. (The old guard of a shrink, shrunkAt,
// was not set: the later look-up's answer changed nothing. The record
// went to partition 3, which the topic no longer has, and failed with
// ErrUnknownTopicOrPartition.)
func TestReview36StaleLargerCountAfterAnUnchangedAnswer(t *testing.T) {
	b, c, ctx, p := countRig(t, 2)
	require.NoError(t, b.CreatePartitions(ctx, "t", 4))

	held, release := heldLookUp(c)
	first := make(chan error, 1)
	go func() { first <- p.ProduceSync(ctx, &record.Record{Partition: 7, Value: []byte("7")}) }()
	<-held // it read 4

	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))
	// A look-up begun now reads 2: the count the producer knows.
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Partition: 2, Value: []byte("2")}), producer.ErrInvalidPartition)
	close(release) // the first look-up's answer, 4, comes last
	require.ErrorIs(t, <-first, producer.ErrInvalidPartition)

	k := keyFor(t, 4, 3, 2)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Key: k, Value: []byte("k")}),
		"a record for the topic's 2 partitions, produced once a look-up read them")
	require.Equal(t, []string{"k"}, values(readRecords(t, b, "t", producer.KeyPartition(k, 2))))
}

// TestReview36StaleSmallerCountAfterAnUnchangedAnswer: the producer knows
// the topic's 4 partitions; the topic is deleted and created again with
// 2, and a look-up reads those 2 but answers only after the topic grew
// back to 4 and a look-up begun later read those 4, the count the
// producer knew. The stale answer must not take the producer to 2
// partitions: a keyed record produced once the later look-up answered
// goes where the topic's 4 partitions put it. (Neither of the old
// guards, grownBy and shrunkBy, was set: the later look-up's answer
// changed nothing. The record went where 2 partitions put it, and would
// have until MetadataMaxAge.)
func TestReview36StaleSmallerCountAfterAnUnchangedAnswer(t *testing.T) {
	b, c, ctx, p := countRig(t, 4)
	require.NoError(t, b.DeleteTopic(ctx, "t"))
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2}))

	held, release := heldLookUp(c)
	first := make(chan error, 1)
	go func() { first <- p.ProduceSync(ctx, &record.Record{Partition: 7, Value: []byte("7")}) }()
	<-held // it read 2

	require.NoError(t, b.CreatePartitions(ctx, "t", 4))
	// A look-up begun now reads 4: the count the producer knows.
	require.ErrorIs(t, p.ProduceSync(ctx, &record.Record{Partition: 5, Value: []byte("5")}), producer.ErrInvalidPartition)
	close(release) // the first look-up's answer, 2, comes last
	require.ErrorIs(t, <-first, producer.ErrInvalidPartition)

	k := keyFor(t, 4, 3, 2)
	require.NoError(t, p.ProduceSync(ctx, &record.Record{Key: k, Value: []byte("k")}))
	require.Equal(t, []string{"k"}, values(readRecords(t, b, "t", 3)))
}
