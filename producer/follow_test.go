package producer

import (
	"context"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// Tests of follow and lookAndFollow: how the producer takes a topic's
// partition count from its look-ups.

// followRig returns the state of topic "t", whose partition count the
// producer knows to be 3.
func followRig(t *testing.T) *topicState {
	p, err := New(&manyClient{n: 3})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	ts, err := p.topic(context.Background(), "t", true)
	require.NoError(t, err)
	require.Len(t, *ts.parts.Load(), 3)
	return ts
}

// TestFollowLaterBegunEarlierAnswered: look-ups a and b are under
// way at once, b begun after a; a answers first, with a count it read
// after a change (4). b's answer, another count (3: it read before the
// change), cannot be placed among them — it began before a answered —,
// and is not followed (ok false: the caller looks again), whatever the
// order they began in. One with the count a set (4) is taken as it is
// (ok true), without a look again. (Mutants: the tie ticket == settled
// taken as newer; settled set to the answering look-up's own ticket
// rather than to the look-ups begun by then; ok false for the count the
// producer has.)
func TestFollowLaterBegunEarlierAnswered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer int
		ok     bool
	}{
		{"another count", 3, false},
		{"the same count", 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := followRig(t)
			a := ts.looks.Add(1)
			b := ts.looks.Add(1)
			n, ok := ts.follow(4, a)
			require.True(t, ok)
			require.Equal(t, 4, n)
			n, ok = ts.follow(tc.answer, b)
			require.Equal(t, tc.ok, ok, "b's %d, under way with a's 4", tc.answer)
			require.Equal(t, 4, n, "the count followed")
			require.Len(t, *ts.parts.Load(), 4)
		})
	}
}

// TestLookAndFollowLooksThreeTimesAtMost: while each look-up's
// answer cannot be placed (another look-up, begun meanwhile, set another
// count first), lookAndFollow looks again, three look-ups in all at most
// (MetadataMaxAge's doc: "three times in all at most"); the third one's
// answer, if it can be placed, is followed, else ignored, and what it
// returns is the count the producer follows then, not the answer it
// ignored.
func TestLookAndFollowLooksThreeTimesAtMost(t *testing.T) {
	for _, tc := range []struct {
		name      string
		interfere int // the first look-ups that another settles under
		want      int // the count followed at the end
		looks     int
	}{
		{"placed at the third", 2, 9, 3},
		{"never placed", 5, 13, 3},
		{"placed at the first", 0, 9, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := followRig(t)
			calls := 0
			n, err := ts.lookAndFollow(func() (int, error) {
				calls++
				if calls <= tc.interfere {
					// Another look-up, begun after this one, answers
					// first with a count of its own (10 + calls).
					other := ts.looks.Add(1)
					got, ok := ts.follow(10+calls, other)
					require.True(t, ok)
					require.Equal(t, 10+calls, got)
				}
				return 9, nil
			})
			require.NoError(t, err)
			require.Equal(t, tc.looks, calls, "look-ups made")
			require.Equal(t, tc.want, n, "the count returned")
			require.Len(t, *ts.parts.Load(), tc.want, "the count followed")
		})
	}
}

// A partition that a topic loses (its count went down: deleted and
// created again with fewer, or a broker that had not caught up) and gets
// back is the same one, with its sequence numbers and its buffered
// batches, also when the count grows past what it was at once: follow
// makes only the partitions the topic never had.
func TestFollowKeepsPartitionsThatComeBack(t *testing.T) {
	p, err := New(&manyClient{n: 3})
	require.NoError(t, err)
	defer p.Close()
	ts, err := p.topic(context.Background(), "t", true)
	require.NoError(t, err)
	had := slices.Clone(*ts.parts.Load())
	require.Len(t, had, 3)

	ts.follow(1, ts.looks.Add(1))
	require.Equal(t, had[:1], *ts.parts.Load())
	ts.follow(5, ts.looks.Add(1))
	now := *ts.parts.Load()
	require.Len(t, now, 5)
	for i, pp := range had {
		require.True(t, pp == now[i], "partition %d was made anew", i)
	}
	for i, pp := range now {
		require.Equal(t, int32(i), pp.id)
	}
	require.Equal(t, now, *ts.all.Load())
}
