package lockedlog

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/runnel/runnel/internal/testkit"
)

// guarded is code that logs under its mutex, as a log or a consumer does.
type guarded struct {
	mu  sync.Mutex
	q   Queue
	log *slog.Logger
}

func newGuarded(h slog.Handler) *guarded {
	g := &guarded{}
	g.log = g.q.Init(&g.mu, slog.New(h))
	return g
}

// do logs msg under mu.
func (g *guarded) do(msg string) {
	g.mu.Lock()
	g.log.Info(msg)
	g.q.Unlock()
}

func TestLinesGoOutAfterTheUnlockInOrder(t *testing.T) {
	var g *guarded
	var got []string
	g = newGuarded(testkit.LineFunc(func(r slog.Record) {
		if !g.mu.TryLock() {
			t.Errorf("line %q handed on under the mutex", r.Message)
			return
		}
		g.mu.Unlock()
		got = append(got, r.Message)
	}))
	g.mu.Lock()
	g.log.Info("a")
	g.log.Warn("b")
	if len(got) != 0 {
		t.Fatalf("lines handed on before the unlock: %q", got)
	}
	g.q.Unlock()
	g.do("c")
	if want := []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

// A handler that logs again through the same code (and so unlocks with
// lines queued while the first batch is being handed on) neither waits
// for itself nor reorders the lines: its line comes after the batch.
func TestHandlerThatCallsBackIn(t *testing.T) {
	var g *guarded
	var got []string
	g = newGuarded(testkit.LineFunc(func(r slog.Record) {
		got = append(got, r.Message)
		if r.Message == "a" {
			g.do("from a's handler")
		}
	}))
	g.mu.Lock()
	g.log.Info("a")
	g.log.Info("b")
	g.q.Unlock()
	if want := []string{"a", "b", "from a's handler"}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	if g.q.delivering.Load() || len(g.q.lines) != 0 {
		t.Fatalf("queue left delivering=%v with %d lines", g.q.delivering.Load(), len(g.q.lines))
	}
}

// Concurrent loggers' lines come out in the order they were logged
// under the mutex, each once.
func TestConcurrentLinesKeepTheirOrder(t *testing.T) {
	var g *guarded
	var mu sync.Mutex // the handler's, for got
	var got []int64
	var logged []int64 // under g.mu
	g = newGuarded(testkit.LineFunc(func(r slog.Record) {
		r.Attrs(func(a slog.Attr) bool {
			mu.Lock()
			got = append(got, a.Value.Int64())
			mu.Unlock()
			return true
		})
	}))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 500 {
				g.mu.Lock()
				n := int64(w*1000 + i)
				logged = append(logged, n)
				g.log.Info("n", "n", n)
				g.q.Unlock()
			}
		})
	}
	wg.Wait()
	if len(got) != len(logged) {
		t.Fatalf("%d lines handed on, %d logged", len(got), len(logged))
	}
	for i := range got {
		if got[i] != logged[i] {
			t.Fatalf("line %d is %d, logged %d", i, got[i], logged[i])
		}
	}
}

func TestDisabledLevelQueuesNothingAndAllocatesNothing(t *testing.T) {
	g := newGuarded(slog.DiscardHandler)
	allocs := testing.AllocsPerRun(100, func() {
		g.mu.Lock()
		g.log.Debug("rolled", "base", int64(7))
		g.q.Unlock()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations a line with the discard handler, want 0", allocs)
	}
	if len(g.q.lines) != 0 {
		t.Fatalf("%d lines queued for the discard handler", len(g.q.lines))
	}
}

func TestWithAttrsAndGroupReachTheHandler(t *testing.T) {
	var g *guarded
	var attrs []string
	h := &recordingHandler{f: func(s string) { attrs = append(attrs, s) }}
	g = &guarded{}
	g.log = g.q.Init(&g.mu, slog.New(h)).With("dir", "d").WithGroup("g")
	g.do("m")
	if want := []string{"with dir", "group g", "handle m"}; !slices.Equal(attrs, want) {
		t.Fatalf("handler saw %q, want %q", attrs, want)
	}
}

type recordingHandler struct{ f func(string) }

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.f("handle " + r.Message)
	return nil
}
func (h *recordingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	h.f("with " + as[0].Key)
	return h
}
func (h *recordingHandler) WithGroup(name string) slog.Handler {
	h.f("group " + name)
	return h
}

// A handler's panic leaves the queue usable: later lines go out.
func TestPanickingHandler(t *testing.T) {
	var got []string
	g := newGuarded(testkit.LineFunc(func(r slog.Record) {
		if r.Message == "boom" {
			panic("boom")
		}
		got = append(got, r.Message)
	}))
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		g.do("boom")
	}()
	if !g.mu.TryLock() {
		t.Fatal("mutex held after the handler's panic")
	}
	g.mu.Unlock()
	g.do("after")
	if want := []string{"after"}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

// Under the race detector a line logged without the mutex panics.
func TestLineWithoutTheMutexPanicsUnderRace(t *testing.T) {
	if !raceEnabled {
		t.Skip("checked in a race build only")
	}
	g := newGuarded(testkit.LineFunc(func(slog.Record) {}))
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a line logged without the mutex")
		}
	}()
	g.log.Info("unguarded")
}

// Held's lines wait for Release, then go out in order, and later lines
// at once; a handler may log to it again.
func TestHeld(t *testing.T) {
	h := NewHeld()
	var got []string
	var log *slog.Logger
	log = h.Logger(slog.New(testkit.LineFunc(func(r slog.Record) {
		got = append(got, r.Message)
		if r.Message == "a" {
			log.Info("from a's handler")
		}
	})))
	log.Info("a")
	log.Info("b")
	if len(got) != 0 {
		t.Fatalf("lines %q handed on before Release", got)
	}
	h.Release()
	log.Info("c")
	if want := []string{"a", "b", "from a's handler", "c"}; !slices.Equal(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}

// UnlockKeep leaves the lines queued (Pending), for a later Unlock.
func TestUnlockKeep(t *testing.T) {
	var got []string
	g := newGuarded(testkit.LineFunc(func(r slog.Record) { got = append(got, r.Message) }))
	if g.q.Pending() {
		t.Fatal("pending before any line")
	}
	g.mu.Lock()
	g.log.Info("kept")
	g.q.UnlockKeep()
	if len(got) != 0 || !g.q.Pending() {
		t.Fatalf("after UnlockKeep: lines %q, pending %v", got, g.q.Pending())
	}
	g.mu.Lock()
	g.q.Unlock()
	if !slices.Equal(got, []string{"kept"}) || g.q.Pending() {
		t.Fatalf("after Unlock: lines %q, pending %v", got, g.q.Pending())
	}
}

// TestHeldKeepsWithAttrsAndGroup: a Held's logger keeps what
// With and WithGroup add (a log's "dir" attribute): its lines reach the
// handler made by them. Kills the mutants that drop heldHandler's
// WithAttrs or WithGroup (the lines went to the bare handler).
func TestHeldKeepsWithAttrsAndGroup(t *testing.T) {
	var calls []string
	h := NewHeld()
	log := h.Logger(slog.New(&recordingHandler{f: func(s string) { calls = append(calls, s) }})).With("dir", "d").WithGroup("g")
	log.Info("m")
	if want := []string{"with dir", "group g"}; !slices.Equal(calls, want) {
		t.Fatalf("handler saw %q before Release, want %q", calls, want)
	}
	h.Release()
	if want := []string{"with dir", "group g", "handle m"}; !slices.Equal(calls, want) {
		t.Fatalf("handler saw %q, want %q", calls, want)
	}
}
