package lockedlog

import (
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
)

// TestGivingUpLosesNoLine: under InitNoWait the goroutine
// handing lines on gives up when it finds the mutex held after a batch (deliver), leaving the
// lines to the holder. Under loggers that hold the mutex a while and a
// handler that yields (so that the mutex is often held when a batch
// ends), and one that logs again from inside its handler, every line is
// handed on once, in the order logged, by the time the loggers return.
func TestGivingUpLosesNoLine(t *testing.T) {
	n := newNumbered(nil, 97)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				n.logN((w + i) % 3)
			}
		})
	}
	wg.Wait()
	n.requireAllHandedOn(t)
}

// numbered logs numbered lines through a Queue made by InitNoWait (with
// hold), and records those its handler gets: the handler yields (so that
// the mutex is often held when a batch ends) and, every callBack lines,
// logs again from inside itself.
type numbered struct {
	g      guarded
	mu     sync.Mutex // the handler's, for got
	got    []int64
	logged []int64 // under g.mu
	next   int64   // under g.mu
}

func newNumbered(hold func() bool, callBack int64) *numbered {
	n := &numbered{}
	n.g.log = n.g.q.InitNoWait(&n.g.mu, slog.New(testkit.LineFunc(func(r slog.Record) {
		var v int64
		r.Attrs(func(a slog.Attr) bool { v = a.Value.Int64(); return true })
		n.mu.Lock()
		n.got = append(n.got, v)
		n.mu.Unlock()
		runtime.Gosched()
		if v%callBack == 0 {
			n.logN(0) // calls back in
		}
	})), hold)
	return n
}

// logN logs the next line, holding the mutex for spin yields.
func (n *numbered) logN(spin int) {
	n.g.mu.Lock()
	v := n.next
	n.next++
	n.logged = append(n.logged, v)
	n.g.log.Info("n", "n", v)
	for range spin {
		runtime.Gosched()
	}
	n.g.q.Unlock()
}

// requireAllHandedOn checks, once the loggers have returned, that every
// line was handed on once, in the order logged, and none is left queued.
func (n *numbered) requireAllHandedOn(t *testing.T) {
	t.Helper()
	n.g.mu.Lock()
	defer n.g.mu.Unlock()
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.g.q.lines) != 0 || n.g.q.Pending() {
		t.Fatalf("%d lines left queued", len(n.g.q.lines))
	}
	if len(n.got) != len(n.logged) {
		t.Fatalf("%d lines handed on, %d logged", len(n.got), len(n.logged))
	}
	for i := range n.got {
		if n.got[i] != n.logged[i] {
			t.Fatalf("line %d is %d, logged %d", i, n.got[i], n.logged[i])
		}
	}
}

// goLog logs msg on a new goroutine as the queue's users do (mu.Lock,
// the line, q.Unlock) and closes done once that Unlock returns.
func goLog(mu sync.Locker, q *Queue, log *slog.Logger, msg string, done chan struct{}) {
	go func() {
		defer close(done)
		mu.Lock()
		log.Info(msg)
		q.Unlock()
	}()
}

// hookMutex is a Queue's Mutex whose next Lock, TryLock or Unlock runs a
// hook first (each hook once), so that a test can stop a goroutine at a
// given step of Unlock or deliver and let others go meanwhile.
type hookMutex struct {
	sync.Mutex
	lockHook, tryHook, unlockHook atomic.Pointer[func()]
}

func (m *hookMutex) Lock() {
	if f := m.lockHook.Swap(nil); f != nil {
		(*f)()
	}
	m.Mutex.Lock()
}

func (m *hookMutex) TryLock() bool {
	if f := m.tryHook.Swap(nil); f != nil {
		(*f)()
	}
	return m.Mutex.TryLock()
}

func (m *hookMutex) Unlock() {
	if f := m.unlockHook.Swap(nil); f != nil {
		(*f)()
	}
	m.Mutex.Unlock()
}

// handedLines records the lines a handler gets, and whether two
// handlers ever ran at once (lines handed on by two goroutines together,
// out of the order logged).
type handedLines struct {
	mu      sync.Mutex
	got     []string
	in      atomic.Int32
	overlap atomic.Bool
}

// handle records r, then runs during (if not nil) as the handler.
func (l *handedLines) handle(r slog.Record, during func(msg string)) {
	if l.in.Add(1) > 1 {
		l.overlap.Store(true)
	}
	defer l.in.Add(-1)
	l.mu.Lock()
	l.got = append(l.got, r.Message)
	l.mu.Unlock()
	if during != nil {
		during(r.Message)
	}
}

// require checks, once every goroutine is done, that the lines handed on
// are want, one handler at a time.
func (l *handedLines) require(t *testing.T, want ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.overlap.Load() {
		t.Fatalf("two goroutines handed lines on at once (lines %q)", l.got)
	}
	if !slices.Equal(l.got, want) {
		t.Fatalf("lines %q, want %q", l.got, want)
	}
}

// awaitClosed waits for c, bounded at testkit.HangGuard to turn a deadlock into a
// failure.
func awaitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(testkit.HangGuard):
		t.Fatalf("%s: blocked", what)
	}
}

// TestNoWaitDelivererDoesNotWaitForTheMutex: under InitNoWait
// the goroutine handing lines on does not wait for the mutex after a
// batch when another goroutine holds it (across a write to a disk that
// hangs, say): its Unlock returns, and the holder's Unlock hands on the
// line it logged. Kills the mutant that drops InitNoWait's noWait (the
// deliverer waited in Lock for the holder, which here waits for the
// deliverer's Unlock to return: a deadlock, the bound's failure).
func TestNoWaitDelivererDoesNotWaitForTheMutex(t *testing.T) {
	var mu sync.Mutex
	var q Queue
	var lines handedLines
	held, release, aDone, bDone := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	var log *slog.Logger
	log = q.InitNoWait(&mu, slog.New(testkit.LineFunc(func(r slog.Record) {
		lines.handle(r, func(msg string) {
			if msg != "a" {
				return
			}
			go func() { // holds the mutex until the test lets it go
				defer close(bDone)
				mu.Lock()
				log.Info("b")
				close(held)
				<-release
				q.Unlock()
			}()
			<-held
		})
	})), nil)
	goLog(&mu, &q, log, "a", aDone)
	defer func() {
		releaseOnce()
		testkit.Await(t, aDone, "deliverer a's end")
		testkit.Await(t, bDone, "deliverer b's end")
	}()
	awaitClosed(t, aDone, "the deliverer's Unlock, the mutex held by another goroutine")
	releaseOnce()
	awaitClosed(t, bDone, "the holder's Unlock")
	lines.require(t, "a", "b")
	if q.Pending() {
		t.Fatal("lines left queued")
	}
}

// TestPlainDelivererWaitsForTheMutex: under Init (not
// InitNoWait) the goroutine handing lines on takes the mutex again after
// a batch, waiting for it if it is held, and hands on the lines queued
// meanwhile (left to it) before its Unlock returns, also when the holder
// releases the mutex with a plain Unlock (it logged nothing). Kills the
// mutant that gives up on a held mutex under Init as under InitNoWait:
// the line left to the deliverer stayed queued until some later Unlock.
func TestPlainDelivererWaitsForTheMutex(t *testing.T) {
	var mu hookMutex
	var q Queue
	var lines handedLines
	held, release, locking, aDone, bDone := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	var log *slog.Logger
	log = q.Init(&mu, slog.New(testkit.LineFunc(func(r slog.Record) {
		lines.handle(r, func(msg string) {
			if msg != "a" {
				return
			}
			mu.Lock() // a line left to this deliverer
			log.Info("c")
			q.Unlock()
			go func() { // holds the mutex, logging nothing, until the test lets it go
				defer close(bDone)
				mu.Lock()
				close(held)
				<-release
				mu.Unlock()
			}()
			<-held
			f := func() { close(locking) }
			mu.lockHook.Store(&f) // the deliverer's next Lock
		})
	})))
	goLog(&mu, &q, log, "a", aDone)
	defer func() {
		releaseOnce()
		testkit.Await(t, aDone, "deliverer a's end")
		testkit.Await(t, bDone, "deliverer b's end")
	}()
	select {
	case <-locking: // waits for the holder: let it go
	case <-aDone:
	case <-time.After(testkit.HangGuard):
		t.Fatal("the deliverer neither took the mutex nor returned")
	}
	releaseOnce()
	awaitClosed(t, aDone, "the deliverer's Unlock")
	awaitClosed(t, bDone, "the holder")
	lines.require(t, "a", "c")
	if q.Pending() {
		t.Fatal("a line left queued")
	}
}

// TestUnlockLooksAgainOnceTheDelivererGaveUp: under InitNoWait,
// an Unlock that found another goroutine handing lines on leaves its
// line to it; should that goroutine give up (finding the mutex still
// held by this Unlock, before its release) without having seen the
// line, the Unlock, having released the mutex, finds it no longer
// handing lines on and hands the line on itself. Kills the mutant that
// returns at once after the release (the line stayed queued, Pending).
func TestUnlockLooksAgainOnceTheDelivererGaveUp(t *testing.T) {
	var mu hookMutex
	var q Queue
	var lines handedLines
	cHolds, cGo, cPaused, cRelease, cDone := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(cRelease) })
	var log *slog.Logger
	log = q.InitNoWait(&mu, slog.New(testkit.LineFunc(func(r slog.Record) {
		lines.handle(r, func(msg string) {
			if msg != "a" {
				return
			}
			go func() { // logs c, and unlocks as the deliverer gives up
				defer close(cDone)
				mu.Lock()
				log.Info("c")
				close(cHolds)
				<-cGo
				q.Unlock()
			}()
			<-cHolds
			// c's Unlock stops just before it releases the mutex, having
			// found the deliverer at work; the deliverer's look for the
			// mutex after its batch lets c's Unlock go, then fails.
			pause := func() { close(cPaused); <-cRelease }
			mu.unlockHook.Store(&pause)
			goC := func() { close(cGo); <-cPaused }
			mu.tryHook.Store(&goC)
		})
	})), nil)
	aDone := make(chan struct{})
	// the deliverer: gives up, c's Unlock holding the mutex
	goLog(&mu, &q, log, "a", aDone)
	defer func() {
		if f := mu.tryHook.Swap(nil); f != nil { // the deliverer never looked: let c go
			go (*f)()
		}
		releaseOnce()
		testkit.Await(t, aDone, "deliverer a's end")
	}()
	awaitClosed(t, aDone, "the deliverer's Unlock")
	releaseOnce()
	awaitClosed(t, cDone, "c's Unlock")
	lines.require(t, "a", "c")
	if q.Pending() {
		t.Fatal("c's line left queued")
	}
}

// TestDelivererThatGaveUpLeavesTheLinesToTheOneThatTookOver:
// under InitNoWait, a goroutine handing lines on that gave up (finding
// the mutex held after a batch, or a hold under way) and then takes the
// mutex to look again, finding that another goroutine took over the
// hand-on meanwhile, leaves the lines queued to it: the lines go out one
// handler at a time, in the order logged. Kills the mutants that drop the
// "another goroutine took over" check after a batch or after a hold (the
// two handed lines on at once, c's handler running while b's still ran).
func TestDelivererThatGaveUpLeavesTheLinesToTheOneThatTookOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		hold bool // the first deliverer stops at a hold, not after a batch
	}{{"after a batch", false}, {"at a hold", true}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu hookMutex
			var q Queue
			var lines handedLines
			bHolds, bGo, inB, bGate, bDone := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
			gateOnce := sync.OnceFunc(func() { close(bGate) })
			goB := sync.OnceFunc(func() { close(bGo) })
			var log *slog.Logger
			// b logs a line and unlocks (once bGo is closed), taking over
			// the hand-on: its handler waits at bGate (on b's first line
			// it hands on, the first deliverer's a under the hold).
			startB := func() {
				go func() {
					defer close(bDone)
					mu.Lock()
					log.Info("b")
					close(bHolds)
					<-bGo
					q.Unlock()
				}()
				<-bHolds
			}
			// takeOver runs on the first deliverer in its TryLock, once it
			// has given up (delivering cleared, the mutex free): b (started
			// now under the hold) takes over, and c queues a line, left to
			// b.
			takeOver := func() {
				if tc.hold {
					startB()
				}
				goB()
				<-inB
				mu.Lock()
				log.Info("c")
				q.Unlock()
			}
			var holds atomic.Int32
			hold := func() bool { return tc.hold && holds.Add(1) == 1 } // the first deliverer's first look only
			blockOn := "b"
			if tc.hold {
				blockOn = "a"
			}
			log = q.InitNoWait(&mu, slog.New(testkit.LineFunc(func(r slog.Record) {
				lines.handle(r, func(msg string) {
					if msg == blockOn {
						close(inB)
						<-bGate
						return
					}
					if msg == "a" { // the first batch: b holds the mutex as it ends
						startB()
						// The deliverer's TryLock after the batch fails on
						// b's hold; its second, having given up, runs
						// takeOver.
						first := func() {
							second := takeOver
							mu.tryHook.Store(&second)
						}
						mu.tryHook.Store(&first)
					}
				})
			})), hold)
			aDone := make(chan struct{})
			go func() { // the first deliverer
				defer close(aDone)
				mu.Lock()
				log.Info("a")
				if tc.hold {
					f := takeOver
					mu.tryHook.Store(&f) // its look after the hold
				}
				q.Unlock()
			}()
			defer func() {
				goB()
				gateOnce()
				testkit.Await(t, aDone, "deliverer a's end")
				testkit.Await(t, bDone, "deliverer b's end")
			}()
			awaitClosed(t, aDone, "the first deliverer's Unlock")
			gateOnce()
			awaitClosed(t, bDone, "b's Unlock")
			lines.require(t, "a", "b", "c")
			if q.Pending() {
				t.Fatal("lines left queued")
			}
		})
	}
}
