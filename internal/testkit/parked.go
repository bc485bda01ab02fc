package testkit

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// Wait is a wait a goroutine can be parked in, as a dump of the
// goroutines' stacks (runtime.Stack's) shows it: for a test that must
// act only once a call waits there (a ctx cancelled during the wait, not
// before it began; a second caller queued behind the first), where the
// call has no hook to say so.
//
// A dump that merely holds a function does not tell that: it stops every
// goroutine where it is, and one caught passing through (running, about
// to park or to return, or parked in another wait on its way in, a
// mutex) is in the function as well. A Wait is therefore the goroutine's
// state, as the dump's header line gives it, and the function it is
// parked in, its innermost frame outside the runtime and package sync;
// Under names the functions further out that tell whose wait it is.
type Wait struct {
	// State is the goroutine's state: "select", "chan send", "chan
	// receive", "sync.Mutex.Lock", "sync.RWMutex.RLock",
	// "sync.WaitGroup.Wait", "sync.Cond.Wait", ... (a synctest bubble's
	// "(durable)", and the collector's "(scan)", are not part of it).
	State string
	// In is the function the goroutine is parked in: its innermost frame
	// whose package is not runtime, internal/sync or sync, named as a
	// dump names it, from a path element on: "runnel.(*Broker).Close",
	// "semaphore.(*Weighted).Acquire", "log.writerLock.Lock" (an inlined
	// call is a frame of its own). A closure is named with its ".funcN".
	In string
	// Under are functions the goroutine's stack holds further out, named
	// as In is: "runnel.(*Broker).DeleteTopic".
	Under []string
}

// AwaitParked returns once some goroutine is parked in one of waits, or
// fails t after HangGuard (or 100,000 looks: in a synctest bubble the
// clock stands still while the looks go on, and a wait never reached, a
// function renamed, would keep them going for ever). It looks after each
// runtime.Gosched, each look a dump of every goroutine's stack (the world
// stopped for it): for a wait that comes soon, not one a goroutine
// reaches after seconds. On t's goroutine: it may fail t.
func AwaitParked(t testing.TB, waits ...Wait) {
	t.Helper()
	deadline := time.Now().Add(HangGuard)
	var buf []byte
	for look := 0; look < 100_000 && time.Now().Before(deadline); look++ {
		runtime.Gosched()
		var stacks string
		stacks, buf = dump(buf)
		for _, w := range waits {
			if CountParked(stacks, w) > 0 {
				return
			}
		}
	}
	t.Fatalf("no goroutine parked in any of %+v", waits)
}

// Stacks returns a dump of every goroutine's stack (runtime.Stack's,
// whole), for CountParked.
func Stacks() string {
	s, _ := dump(nil)
	return s
}

// dump is Stacks reusing buf, which it returns (grown, should every
// stack not fit).
func dump(buf []byte) (string, []byte) {
	if len(buf) == 0 {
		buf = make([]byte, 1<<20)
	}
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n]), buf
		}
		buf = make([]byte, 2*len(buf))
	}
}

// CountParked returns how many goroutines of stacks (a dump of
// Stacks') are parked in w.
func CountParked(stacks string, w Wait) int {
	n := 0
	for g := range strings.SplitSeq(stacks, "\n\n") {
		if parkedIn(g, w) {
			n++
		}
	}
	return n
}

// parkedIn reports whether g, one goroutine's part of a dump (its header
// line, then for each frame its function's line and a tab-indented
// file's, innermost first, then perhaps a "created by" pair), is parked
// in w.
func parkedIn(g string, w Wait) bool {
	header, rest, _ := strings.Cut(g, "\n")
	if state(header) != w.State {
		return false
	}
	var fs []string
	for line := range strings.Lines(rest) {
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "created by ") {
			continue
		}
		if i := strings.LastIndexByte(line, '('); i > 0 {
			line = line[:i]
		}
		fs = append(fs, strings.TrimSpace(line))
	}
	i := 0
	for i < len(fs) && plumbing(fs[i]) {
		i++
	}
	if i == len(fs) || !names(fs[i], w.In) {
		return false
	}
next:
	for _, u := range w.Under {
		for _, f := range fs[i+1:] {
			if names(f, u) {
				continue next
			}
		}
		return false
	}
	return true
}

// state returns the state a goroutine's header line gives ("goroutine 7
// [select, 2 minutes]:" gives "select"), without the suffixes that do
// not change the wait: " (durable)" in a synctest bubble, " (scan)"
// while the collector scans the stack.
func state(header string) string {
	_, s, ok := strings.Cut(header, " [")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(s, ",]"); i >= 0 {
		s = s[:i]
	}
	for _, suffix := range []string{" (durable)", " (scan)"} {
		s = strings.TrimSuffix(s, suffix)
	}
	return s
}

// plumbing reports whether the function named is the runtime's or the
// standard library's synchronization's (package sync and internal/sync),
// which a wait passes through on its way to park: a Wait names the
// function that called into it.
func plumbing(name string) bool {
	return strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "sync.") || strings.HasPrefix(name, "internal/sync.")
}

// names reports whether the function full (as a dump gives it, with its
// package's path) is the one short names: full itself, or full's end
// from a path element on ("runnel.(*Broker).Close" for
// "github.com/runnel/runnel.(*Broker).Close").
func names(full, short string) bool {
	return full == short || strings.HasSuffix(full, "/"+short)
}
