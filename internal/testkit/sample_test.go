package testkit

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// EveryAndLast samples every every-th element from the first and the
// last, once, whether or not the stride lands on it; every of 1 or less
// is all of them.
func TestEveryAndLast(t *testing.T) {
	s := []int{1, 2, 3, 4, 5, 6, 7}
	require.Equal(t, []int{1, 4, 7}, EveryAndLast(s, 3))
	require.Equal(t, []int{1, 5, 7}, EveryAndLast(s, 4))
	require.Equal(t, []int{1, 7}, EveryAndLast(s, 10))
	require.Equal(t, s, EveryAndLast(s, 1))
	require.Equal(t, s, EveryAndLast(s, 0))
	require.Equal(t, []int{1}, EveryAndLast([]int{1}, 5))
	require.Empty(t, EveryAndLast([]int(nil), 5))
}

// Sample keeps the first and the last, one from each run of every, in
// order, the same for a seed; over seeds, each point some of the time.
func TestSample(t *testing.T) {
	s := make([]int, 23)
	for i := range s {
		s[i] = i
	}
	taken := make([]int, len(s))
	for seed := range uint64(200) {
		got := Sample(s, 5, seed)
		require.Equal(t, got, Sample(s, 5, seed), "seed %d", seed)
		require.True(t, slices.IsSorted(got))
		require.Equal(t, 0, got[0])
		require.Equal(t, 22, got[len(got)-1])
		for w := 0; w < len(s); w += 5 {
			in := 0
			for _, v := range got {
				if v >= w && v < w+5 && v != 0 && v != 22 {
					in++
				}
			}
			require.LessOrEqual(t, in, 1, "seed %d: window %d", seed, w)
		}
		require.LessOrEqual(t, len(got), 7)
		for _, v := range got {
			taken[v]++
		}
	}
	for i, n := range taken {
		require.Positive(t, n, "point %d never taken in 200 seeds", i)
	}
	require.Equal(t, s, Sample(s, 1, 3))
	require.Empty(t, Sample([]int(nil), 4, 3))
	require.Equal(t, []int{7}, Sample([]int{7}, 4, 3))
}
