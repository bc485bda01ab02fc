// Package callstack tells whether the calling goroutine runs inside given
// functions. The clients use it to notice a call that would wait for its
// own caller — a producer's Close from a promise, a consumer's Close from
// a Client's method — and return rather than deadlock. It walks the
// stack, a few microseconds a call: it is for such rare calls, never for
// a record's path. It also stops the program, saying why, when code of
// the application's ends a goroutine of runnel's with runtime.Goexit
// (GoexitPanics). It sits below producer, consumer and the broker (the
// root package: a Broker's Close from its slog handler) and uses
// nothing of runnel's.
package callstack

import "runtime"

// FaultsMatch is the function a runneltest.Fault's Match runs under, on
// a goroutine of its own that a Client's method (runneltest.Faults')
// waits for: code there runs on behalf of the method, as if on its
// goroutine, and the clients look for it beside their own functions (a
// Close from a Match returns, as one from a Client's method does). It
// is runneltest's, named here, below both clients, as a string:
// runneltest's TestFaultsMatchNamedForTheClients fails at once should it
// be renamed (and TestFaultsMatchCloses hangs).
const FaultsMatch = "github.com/runnel/runnel/runneltest.(*Rule).callMatch.func1"

// Within reports whether a function named in names (as runtime.Frame's
// Function gives it: "path/to/pkg.(*T).Method", a closure's with its
// ".funcN") is on the calling goroutine's stack, below Within's caller.
func Within(names ...string) bool {
	var pcs [64]uintptr
	skip := 2 // runtime.Callers and Within
	for {
		n := runtime.Callers(skip, pcs[:])
		frames := runtime.CallersFrames(pcs[:n])
		for {
			f, more := frames.Next()
			for _, name := range names {
				if f.Function == name {
					return true
				}
			}
			if !more {
				break
			}
		}
		if n < len(pcs) {
			return false
		}
		skip += n
	}
}

// GoexitPanics runs f, which calls the application's code (a promise, a
// Client's method, a Logger's handler). Should f end the goroutine with
// runtime.Goexit (t.FailNow, t.Fatal or a require assertion in a test's
// callback), the goroutine, if ours says it is one of runnel's (ours
// nil: always), panics with err instead: gone, it would leave its work
// silently where it stood. A panic of f goes on as it came (recovered
// and raised again only on runnel's goroutines), and on any other
// goroutine a Goexit goes on as well. ours runs only then, never when f
// returns: the normal path costs a defer.
func GoexitPanics(f func(), err error, ours func() bool) {
	returned := false
	defer func() {
		if returned || ours != nil && !ours() {
			return
		}
		if v := recover(); v != nil {
			panic(v)
		}
		panic(err)
	}()
	f()
	returned = true
}
