package log

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEndOffsetForAsKafka: OffsetForLeaderEpoch's answers are
// Kafka's LeaderEpochFileCache.endOffsetFor's, case by case. The doc
// claimed so while an epoch above the latest answered the latest epoch
// and the log end (Kafka: none), and one below the earliest answered
// none (Kafka: itself, ending at the earliest one's start, so that a
// follower or a KIP-320 consumer does not take a retention for a
// truncation).
func TestEndOffsetForAsKafka(t *testing.T) {
	c := epochCache{entries: []EpochEntry{{Epoch: 2, StartOffset: 5}, {Epoch: 4, StartOffset: 9}, {Epoch: 7, StartOffset: 12}}}
	const leo = 20
	for _, tc := range []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1}, // UNDEFINED_EPOCH
		{0, 0, 5},    // below the earliest: itself, to the earliest's start
		{1, 1, 5},
		{2, 2, 9}, // known: to the next one's start
		{3, 2, 9}, // between: the one below, to the next one's start
		{4, 4, 12},
		{6, 4, 12},
		{7, 7, leo}, // the latest: to the log end
		{8, -1, -1}, // above the latest: none
	} {
		ep, end := c.endOffsetFor(tc.epoch, leo)
		require.Equal(t, tc.wantEpoch, ep, "epoch %d", tc.epoch)
		require.Equal(t, tc.wantEnd, end, "epoch %d", tc.epoch)
	}
	var empty epochCache
	ep, end := empty.endOffsetFor(3, leo)
	require.Equal(t, int32(-1), ep)
	require.Equal(t, int64(-1), end)
}
