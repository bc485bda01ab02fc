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
	var g *guarded
	var mu sync.Mutex // the handler's, for got
	var got []int64
	var logged []int64 // under g.mu
	var next int64     // under g.mu
	logN := func(hold int) {
		g.mu.Lock()
		n := next
		next++
		logged = append(logged, n)
		g.log.Info("n", "n", n)
		for range hold {
			runtime.Gosched()
		}
		g.q.Unlock()
	}
	g = &guarded{}
	g.log = g.q.InitNoWait(&g.mu, slog.New(testkit.LineFunc(func(r slog.Record) {
		var n int64
		r.Attrs(func(a slog.Attr) bool { n = a.Value.Int64(); return true })
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		runtime.Gosched()
		if n%97 == 0 {
			logN(0) // calls back in
		}
	})), nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				logN((w + i) % 3)
			}
		})
	}
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if len(g.q.lines) != 0 || g.q.Pending() {
		t.Fatalf("%d lines left queued", len(g.q.lines))
	}
	if len(got) != len(logged) {
		t.Fatalf("%d lines handed on, %d logged", len(got), len(logged))
	}
	for i := range got {
		if got[i] != logged[i] {
			t.Fatalf("line %d is %d, logged %d", i, got[i], logged[i])
		}
	}
}
