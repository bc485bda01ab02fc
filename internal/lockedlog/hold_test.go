package lockedlog

import (
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

// TestHoldLosesNoLine: under InitNoWait with a hold (the
// log's HoldLines), taken and ended again and again by goroutines that,
// ending the last, hand on what is queued only if they can take the
// mutex at once (as the log's release does), while loggers log and
// unlock and a handler yields and logs again: every line is handed on
// once, in the order logged, and none is left queued.
func TestHoldLosesNoLine(t *testing.T) {
	var holds atomic.Int32
	n := newNumbered(func() bool { return holds.Load() != 0 }, 89)
	endHold := func() {
		if holds.Add(-1) == 0 && n.g.q.Pending() && n.g.mu.TryLock() {
			n.g.q.Unlock()
		}
	}
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
				n.logN((w + i) % 3)
			}
		})
	}
	wg.Wait()
	close(stop)
	holders.Wait()
	n.requireAllHandedOn(t)
}

// TestHoldEndingAsItStops: the hold ends just as Unlock
// finds it under way and stops, its ender having found the mutex held
// (and so leaving the lines to Unlock): Unlock, which looks at the hold
// again once it released the mutex, hands the line on before it
// returns; and a hold that stays leaves it queued for its ender.
func TestHoldEndingAsItStops(t *testing.T) {
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
