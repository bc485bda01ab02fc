package callstack

import "testing"

const self = "github.com/runnel/runnel/internal/callstack.TestWithin"

// deep calls f under n frames of its own, so that the function looked
// for lies past Within's first 64 program counters.
//
//go:noinline
func deep(n int, f func() bool) bool {
	if n == 0 {
		return f()
	}
	return deep(n-1, f)
}

func TestWithin(t *testing.T) {
	if !Within(self) {
		t.Fatal("the test's own function is not found on its stack")
	}
	if Within("github.com/runnel/runnel/internal/callstack.nowhere") {
		t.Fatal("a function not on the stack is found")
	}
	if !deep(200, func() bool { return Within("nowhere", self) }) {
		t.Fatal("a function 200 frames down is not found")
	}
	if deep(200, func() bool { return Within("nowhere") }) {
		t.Fatal("a function not on a deep stack is found")
	}
	done := make(chan bool)
	go func() { done <- Within(self) }()
	if <-done {
		t.Fatal("another goroutine's stack holds the test's function")
	}
}

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
