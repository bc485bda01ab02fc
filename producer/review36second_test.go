package producer_test

import "testing"

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
	requireStaleCountNotFollowed(t, 2, grow(4), recreate(2), 4, 2)
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
	requireStaleCountNotFollowed(t, 4, recreate(2), grow(4), 2, 4)
}
