package runneltest_test

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeT records a failure instead of ending the test. Fatalf panics, to
// end the helper as the real one would (with runtime.Goexit); fails
// recovers it.
type fakeT struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	panic(fatal{})
}

func (f *fakeT) Helper() {}

type fatal struct{}

// fails runs fn with a fakeT and returns it, failing t if fn panicked
// with anything but the fakeT's Fatalf.
func fails(t *testing.T, fn func(ft *fakeT)) *fakeT {
	t.Helper()
	ft := &fakeT{TB: t}
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(fatal); !ok {
					t.Fatalf("panic: %v", r)
				}
			}
		}()
		fn(ft)
	}()
	return ft
}

// deadlineT is a fakeT with a test deadline (-timeout), as *testing.T
// has.
type deadlineT struct {
	*fakeT
	deadline time.Time
}

func (d deadlineT) Deadline() (time.Time, bool) { return d.deadline, true }

// untilInTime runs scenario with a wait of first and, each time it
// reports that its precondition did not hold, again with a wait four
// times longer. A test of what Consume says when its wait ends needs
// something done before the wait ends (a fetch sent, the records there
// read), which a loaded machine may not do within a short real-time
// wait. The scenario returns false, before the assertions that need the
// precondition, when it did not hold, and asserts the same outcome at
// every wait: the test's verdict does not depend on the machine's speed,
// only its length does. A wait past 15 s fails the test (a hang guard,
// not a measure of speed).
func untilInTime(t *testing.T, first time.Duration, scenario func(wait time.Duration) bool) {
	t.Helper()
	for wait := first; ; wait *= 4 {
		if wait > 15*time.Second {
			t.Fatalf("the scenario's precondition failed even with a wait of %v", wait/4)
		}
		if scenario(wait) {
			return
		}
		t.Logf("a wait of %v was too short on this machine for the scenario: again with %v", wait, 4*wait)
	}
}
