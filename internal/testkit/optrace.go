package testkit

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/vfs"
)

// OpTrace is a vfs.Injector that fails nothing and, while on, records
// each operation it is asked about as "op name", Trim cut from the
// front of the name (a test's temporary directory): the trace that a
// fault sweep's counting run and its later runs must share
// (RequireSameOps). Set Trim before turning it on.
type OpTrace struct {
	Trim string
	on   atomic.Bool
	mu   sync.Mutex
	ops  []string
}

// SetOn starts (true) or stops (false) the recording.
func (o *OpTrace) SetOn(on bool) { o.on.Store(on) }

// MaybeError records op on name while the trace is on, and returns nil.
func (o *OpTrace) MaybeError(op vfs.Op, name string) error {
	if o.on.Load() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.ops = append(o.ops, op.String()+" "+strings.TrimPrefix(name, o.Trim))
	}
	return nil
}

// Ops returns the operations recorded so far.
func (o *OpTrace) Ops() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ops...)
}

// RequireSameOps fails the test unless got, the operations of a later
// run (the run-th), are want, those of the first run, in the same order,
// naming where they part: a sweep that counts a scenario's operations on
// one run and fails the k-th on another needs them the same.
func RequireSameOps[Op comparable](t testing.TB, want, got []Op, run int) {
	t.Helper()
	n := 0
	for n < len(want) && n < len(got) && want[n] == got[n] {
		n++
	}
	if n < len(want) || len(got) != len(want) {
		t.Fatalf("run %d: %d operations, the first run %d; they part at operation %d: %v, then %v",
			run, len(got), len(want), n+1, want[n:min(n+3, len(want))], got[n:min(n+3, len(got))])
	}
}
