package lockedlog

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

// TestReview35SecondHoldLosesNoLine: under InitNoWait with a hold (the
// log's HoldLines), taken and ended again and again by goroutines that,
// ending the last, hand on what is queued only if they can take the
// mutex at once (as the log's release does), while loggers log and
// unlock and a handler yields and logs again: every line is handed on
// once, in the order logged, and none is left queued.
func TestReview35SecondHoldLosesNoLine(t *testing.T) {
	var g *guarded
	var holds atomic.Int32
	var mu sync.Mutex // the handler's, for got
	var got []int64
	var logged []int64 // under g.mu
	var next int64     // under g.mu
	logN := func(spin int) {
		g.mu.Lock()
		n := next
		next++
		logged = append(logged, n)
		g.log.Info("n", "n", n)
		for range spin {
			runtime.Gosched()
		}
		g.q.Unlock()
	}
	endHold := func() {
		if holds.Add(-1) == 0 && g.q.Pending() && g.mu.TryLock() {
			g.q.Unlock()
		}
	}
	g = &guarded{}
	g.log = g.q.InitNoWait(&g.mu, slog.New(testkit.LineFunc(func(r slog.Record) {
		var n int64
		r.Attrs(func(a slog.Attr) bool { n = a.Value.Int64(); return true })
		mu.Lock()
		got = append(got, n)
		mu.Unlock()
		runtime.Gosched()
		if n%89 == 0 {
			logN(0) // calls back in
		}
	})), func() bool { return holds.Load() != 0 })
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var holders sync.WaitGroup
	for h := range 2 {
		holders.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				holds.Add(1)
				for range (h + i) % 4 {
					runtime.Gosched()
				}
				endHold()
			}
		})
	}
	for w := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				logN((w + i) % 3)
			}
		})
	}
	wg.Wait()
	close(stop)
	holders.Wait()
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

// TestReview35SecondHoldEndingAsItStops: the hold ends just as Unlock
// finds it under way and stops, its ender having found the mutex held
// (and so leaving the lines to Unlock): Unlock, which looks at the hold
// again once it released the mutex, hands the line on before it
// returns; and a hold that stays leaves it queued for its ender.
func TestReview35SecondHoldEndingAsItStops(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script []bool // what hold answers, one call after another
		handed bool
	}{
		{"hold ends meanwhile", []bool{true, false}, true},
		{"hold stays", []bool{true, true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var q Queue
			var got []string
			calls := 0
			log := q.InitNoWait(&mu, slog.New(testkit.LineFunc(func(r slog.Record) {
				got = append(got, r.Message)
			})), func() bool {
				held := calls < len(tc.script) && tc.script[calls] // then ended
				calls++
				return held
			})
			mu.Lock()
			log.Info("a")
			q.Unlock()
			if tc.handed {
				if len(got) != 1 || q.Pending() {
					t.Fatalf("handed on %q, pending %v: the line was left queued with the hold ended", got, q.Pending())
				}
				return
			}
			if len(got) != 0 || !q.Pending() {
				t.Fatalf("handed on %q under the hold", got)
			}
			mu.Lock() // the hold's ender
			q.Unlock()
			if len(got) != 1 || q.Pending() {
				t.Fatalf("handed on %q once the hold ended", got)
			}
		})
	}
}
