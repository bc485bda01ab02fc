// Package testkit holds the small helpers that the tests of several
// packages share (the bad-input tables of the root package, producer and
// consumer). It is internal: test support, imported only by tests.
package testkit

import (
	"fmt"
	"math"
	"testing"
)

// NoPanic runs f and turns a panic into a test failure naming the case
// (and an error returned), so that one bad case does not hide the others.
func NoPanic(t testing.TB, name string, f func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: panicked: %v", name, r)
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// PastInt32 is math.MaxInt32+n as an int, computed at run time so that
// the tests compile where int has 32 bits (there it wraps to a negative
// number, which the calls under test refuse too).
func PastInt32(n int64) int { return int(int64(math.MaxInt32) + n) }
