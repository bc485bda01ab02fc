package testkit

import (
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
