package vfs

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// selfWrapper is a Wrapper that leads back to itself, or to nil.
type selfWrapper struct {
	FS
	inner FS
}

func (w *selfWrapper) Unwrap() FS { return w.inner }

// TestUnwrap: Unwrap sees through WithFaults, however deep, and stops at
// an FS that is no Wrapper, at a Wrapper whose Unwrap returns nil, and
// after maxUnwrap wrappers that lead back to themselves.
func TestUnwrap(t *testing.T) {
	nop := InjectorFunc(func(Op, string) error { return nil })
	mem := NewMem()
	require.Same(t, mem, Unwrap(mem))
	require.Same(t, mem, Unwrap(WithFaults(mem, nop)))
	require.Same(t, mem, Unwrap(WithFaults(WithFaults(mem, nop), nop)))
	require.Equal(t, OS, Unwrap(WithFaults(OS, nop)))
	require.Implements(t, (*Wrapper)(nil), WithFaults(mem, nop))

	none := &selfWrapper{FS: mem}
	require.Same(t, none, Unwrap(none).(*selfWrapper), "a Wrapper of nil is none")
	loop := &selfWrapper{FS: mem}
	loop.inner = loop
	require.Same(t, loop, Unwrap(loop).(*selfWrapper), "a loop ends")
}

// Unwrap sees through a deep stack of wrappers (here 100), not only two.
func TestUnwrapDeep(t *testing.T) {
	nop := InjectorFunc(func(Op, string) error { return nil })
	mem := NewMem()
	var fsys FS = mem
	for range 100 {
		fsys = WithFaults(fsys, nop)
	}
	require.Same(t, mem, Unwrap(fsys), "100 wrappers")
}
