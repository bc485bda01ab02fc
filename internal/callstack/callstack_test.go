package callstack

import (
	"runtime"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

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
	if testkit.Await(t, done, "Within's answer on another goroutine") {
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

// TestGoexitPanics: a Goexit of f on a goroutine of runnel's becomes a
// panic with the error given; a panic of f stays its own; on another
// goroutine (ours false) a Goexit stays a Goexit; a return is a return.
func TestGoexitPanics(t *testing.T) {
	errGone := errorString("gone")
	// run runs body on a goroutine of its own and reports how it ended:
	// the value it panicked with, or "goexit", or "returned".
	run := func(body func()) any {
		done := make(chan any, 1)
		go func() {
			ended := "goexit"
			defer func() {
				if v := recover(); v != nil {
					done <- v
					return
				}
				done <- ended
			}()
			body()
			ended = "returned"
		}()
		return testkit.Await(t, done, "the body's end")
	}
	yes := func() bool { return true }
	no := func() bool { return false }
	for _, c := range []struct {
		name string
		f    func()
		ours func() bool
		want any
	}{
		{"goexit, always ours", runtime.Goexit, nil, errGone},
		{"goexit, ours", runtime.Goexit, yes, errGone},
		{"goexit, not ours", runtime.Goexit, no, "goexit"},
		{"panic, ours", func() { panic("its own") }, yes, "its own"},
		{"panic, not ours", func() { panic("its own") }, no, "its own"},
		{"return", func() {}, yes, "returned"},
	} {
		if got := run(func() { GoexitPanics(c.f, errGone, c.ours) }); got != c.want {
			t.Errorf("%s: ended with %v, want %v", c.name, got, c.want)
		}
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }
