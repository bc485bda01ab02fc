package lockedlog

import (
	"log/slog"
	"runtime"
	"sync"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

// TestReview35GivingUpLosesNoLine: under InitNoWait the goroutine
// handing lines on gives up when it finds the mutex held after a batch (deliver), leaving the
// lines to the holder. Under loggers that hold the mutex a while and a
// handler that yields (so that the mutex is often held when a batch
// ends), and one that logs again from inside its handler, every line is
// handed on once, in the order logged, by the time the loggers return.
func TestReview35GivingUpLosesNoLine(t *testing.T) {
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
