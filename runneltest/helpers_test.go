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
