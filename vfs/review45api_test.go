package vfs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Review 45api: the exported API read as a reviewer freezing it for v1.0.

// TestReview45APIWithFaultsNilInjector: WithFaults says "A nil inj returns
// fs itself". A nil InjectorFunc, or a nil *Counter (var c *Counter, set
// on some path only), is a nil inj too: WithFaults wrapped it, and the
// first operation panicked calling it.
func TestReview45APIWithFaultsNilInjector(t *testing.T) {
	m := NewMem()
	var f InjectorFunc
	var c *Counter
	for _, inj := range []Injector{nil, f, c} {
		fs := WithFaults(m, inj)
		require.Same(t, m, fs, "WithFaults(m, %T(nil)) is m", inj)
		require.NotPanics(t, func() { _ = fs.MkdirAll("d", 0o755) })
	}
}
