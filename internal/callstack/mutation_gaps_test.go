package callstack

// Tests that close gaps found by mutation testing: each fails against a
// mutant of the package that its other tests let through.

import "testing"

const atEveryDepth = "github.com/runnel/runnel/internal/callstack.TestWithinAtEveryDepth"

// TestWithinAtEveryDepth: the function looked for is found at any depth,
// among them those where it is the first or the last frame of one of
// Within's reads of 64 program counters (a read that starts one frame too
// far on misses it).
func TestWithinAtEveryDepth(t *testing.T) {
	for d := range 200 {
		if !deep(d, func() bool { return Within(atEveryDepth) }) {
			t.Fatalf("the test's function, %d frames down, is not found", d)
		}
	}
}
