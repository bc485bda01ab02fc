// Package callstack tells whether the calling goroutine runs inside given
// functions. The clients use it to notice a call that would wait for its
// own caller — a producer's Close from a promise, a consumer's Close from
// a Client's method — and return rather than deadlock. It walks the
// stack, a few microseconds a call: it is for such rare calls, never for
// a record's path. It sits below producer, consumer and the broker (the
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
