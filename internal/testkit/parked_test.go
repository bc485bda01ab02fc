package testkit

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

const pkg = "testkit."

// parkSelect parks in a select of its own until stop closes.
//
//go:noinline
func parkSelect(stop, other <-chan struct{}) {
	select {
	case <-stop:
	case <-other:
	}
}

// parkSend parks in a send to c.
//
//go:noinline
func parkSend(c chan<- struct{}) { c <- struct{}{} }

// lockThenSelect takes mu, then parks in parkSelect.
//
//go:noinline
func lockThenSelect(mu *sync.Mutex, stop <-chan struct{}) {
	mu.Lock()
	defer mu.Unlock()
	parkSelect(stop, nil)
}

// outside calls f: a frame further out than f's.
//
//go:noinline
func outside(f func()) { f() }

// spinIn runs in a loop of its own, never parked, until stop is set.
//
//go:noinline
func spinIn(in *atomic.Bool, stop *atomic.Bool) {
	in.Store(true)
	for !stop.Load() {
	}
}

// waitGroupWait parks in wg.Wait.
//
//go:noinline
func waitGroupWait(wg *sync.WaitGroup) { wg.Wait() }

// TestCountParked: a goroutine counts as parked in a Wait only with the
// Wait's state, its innermost frame outside the runtime and package sync
// the Wait's function, and each of Under further out: one parked in
// another wait on its way in (a mutex), one that runs in the function,
// one parked in the function's callee, do not.
func TestCountParked(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)

	var mu sync.Mutex
	mu.Lock() // the second lockThenSelect waits for it, on its way to its select
	unlocked := false
	defer func() {
		if !unlocked {
			mu.Unlock()
		}
	}()
	wg.Go(func() { outside(func() { lockThenSelect(&mu, stop) }) })
	send := make(chan struct{})
	wg.Go(func() { parkSend(send) })
	defer func() { <-send }()
	var in, done atomic.Bool
	defer done.Store(true)
	wg.Go(func() { spinIn(&in, &done) })
	SpinUntil(t, in.Load, "spinIn did not begin")
	var counted sync.WaitGroup
	counted.Add(1)
	defer counted.Done()
	wg.Go(func() { outside(func() { waitGroupWait(&counted) }) })

	locking := Wait{State: "sync.Mutex.Lock", In: pkg + "lockThenSelect", Under: []string{pkg + "outside"}}
	AwaitParked(t, locking)
	AwaitParked(t, Wait{State: "chan send", In: pkg + "parkSend"})
	AwaitParked(t, Wait{State: "sync.WaitGroup.Wait", In: pkg + "waitGroupWait"})
	stacks := Stacks()
	for _, c := range []struct {
		w    Wait
		want int
	}{
		{locking, 1},
		{Wait{State: "select", In: pkg + "parkSelect"}, 0},     // on its way: in the mutex
		{Wait{State: "select", In: pkg + "lockThenSelect"}, 0}, // not in its state
		{Wait{State: "sync.Mutex.Lock", In: pkg + "lockThenSelect", Under: []string{pkg + "nowhere"}}, 0},
		{Wait{State: "select", In: pkg + "spinIn"}, 0},               // caught running or runnable: never parked
		{Wait{State: "chan send", In: "parkSend"}, 0},                // a name cut inside a path element
		{Wait{State: "sync.WaitGroup.Wait", In: pkg + "outside"}, 0}, // a frame further out
		{Wait{State: "sync.WaitGroup.Wait", In: pkg + "waitGroupWait", Under: []string{pkg + "outside"}}, 1},
	} {
		if got := CountParked(stacks, c.w); got != c.want {
			t.Errorf("%+v: %d goroutines parked, want %d", c.w, got, c.want)
		}
	}

	mu.Unlock()
	unlocked = true
	AwaitParked(t, Wait{State: "select", In: pkg + "parkSelect", Under: []string{pkg + "lockThenSelect", pkg + "outside"}})
}

// TestCountParkedInABubble: in a synctest bubble a durably blocked
// goroutine's state reads "select (durable)" and "synctest bubble N":
// it is the select a Wait names.
func TestCountParkedInABubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		go parkSelect(stop, nil)
		synctest.Wait()
		if n := CountParked(Stacks(), Wait{State: "select", In: pkg + "parkSelect"}); n != 1 {
			t.Errorf("%d goroutines parked in parkSelect's select, want 1:\n%s", n, Stacks())
		}
		close(stop)
	})
}

// TestState: the state of a header line, without what does not change
// the wait.
func TestState(t *testing.T) {
	for header, want := range map[string]string{
		"goroutine 7 [select]:":                                 "select",
		"goroutine 7 [select, 2 minutes]:":                      "select",
		"goroutine 7 [chan receive (nil chan)]:":                "chan receive (nil chan)",
		"goroutine 7 [select (durable), synctest bubble 3]:":    "select",
		"goroutine 7 [sync.Mutex.Lock (scan)]:":                 "sync.Mutex.Lock",
		"goroutine 7 [running]:":                                "running",
		"goroutine 7 [semacquire, 3 minutes, locked to thread]": "semacquire",
		"not a header": "",
	} {
		if got := state(header); got != want {
			t.Errorf("state(%q) = %q, want %q", header, got, want)
		}
	}
}
