package consumer_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/stretchr/testify/require"
)

// TestUnassignInAnyOrderKeepsTheRest: Unassign fills the gap it leaves
// with the last assignment (so that it takes the same time however many
// partitions are assigned). Unassigning from the front, the middle and
// the end, and assigning again in between, each Poll still fetches every
// partition assigned and none other, and Assigned lists them.
func TestUnassignInAnyOrderKeepsTheRest(t *testing.T) {
	const n = 8
	b := openBroker(t, map[string]int{"t": n})
	c := newConsumer(t, b, consumer.FetchMaxWait(time.Millisecond))
	assigned := map[int32]bool{}
	for p := range int32(n) {
		require.NoError(t, c.Assign("t", p, consumer.End()))
		assigned[p] = true
	}
	steps := []struct {
		unassign int32
		assign   int32 // -1: none
	}{
		{0, -1}, {7, -1}, {3, -1}, {1, 0}, {0, 7}, {5, -1}, {2, 3}, {6, -1}, {4, -1}, {7, -1}, {3, -1},
	}
	for round, s := range steps {
		c.Unassign("t", s.unassign)
		delete(assigned, s.unassign)
		if s.assign >= 0 {
			require.NoError(t, c.Assign("t", s.assign, consumer.End()))
			assigned[s.assign] = true
		}
		want := []api.TopicPartition{}
		for p := range int32(n) {
			if assigned[p] {
				want = append(want, api.TopicPartition{Topic: "t", Partition: p})
			}
		}
		require.Equal(t, want, c.Assigned(), "round %d", round)
		// Wait until each assigned partition's position is resolved (at
		// its end), so that the records produced next are each read.
		for _, tp := range want {
			for {
				if _, ok := c.Position("t", tp.Partition); ok {
					break
				}
				_, err := c.Poll(testCtx(t))
				require.NoError(t, err, "round %d: %v", round, tp)
			}
		}
		for p := range int32(n) {
			values(t, b, "t", p, fmt.Sprintf("r%d-p%d", round, p))
		}
		var g got
		for len(g.recs) < len(want) {
			fs, err := c.Poll(testCtx(t))
			require.NoError(t, err)
			g.add(fs)
			require.Empty(t, g.errs)
		}
		var read []string
		for _, r := range g.recs {
			read = append(read, string(r.Value))
		}
		slices.Sort(read)
		var expect []string
		for _, tp := range want {
			expect = append(expect, fmt.Sprintf("r%d-p%d", round, tp.Partition))
		}
		slices.Sort(expect)
		require.Equal(t, expect, read, "round %d", round)
	}
	require.Empty(t, c.Assigned())
}
