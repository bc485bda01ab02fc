package testkit

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// LineTally tallies the lines a logger's owner hands on against those
// it logged: slog asks a handler's Enabled once for each line it logs,
// on the logging goroutine, as the line is logged (a log asks it under
// its lock; the lockedlog queue and the broker's holds ask their next
// handler's Enabled), and Handle once for each line handed on. Once no
// goroutine can log or hand lines on, the two counts are equal when
// every line logged was handed on exactly once. The lines handed are
// kept, as "message k=v k=v" (a "duration" attribute left out), in the
// order handed. The zero LineTally is ready to use.
type LineTally struct {
	logged atomic.Int64
	mu     sync.Mutex
	lines  []string // in the order handed (mu)
}

// Logger returns a logger whose lines the tally counts.
func (c *LineTally) Logger() *slog.Logger { return slog.New(tallyHandler{c: c}) }

// Handed returns the number of lines handed on, and a copy of them.
func (c *LineTally) Handed() (int64, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.lines)), append([]string(nil), c.lines...)
}

// Has reports whether a line whose message is msg was handed on.
func (c *LineTally) Has(msg string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.HasPrefix(l, msg+" ") {
			return true
		}
	}
	return false
}

// RequireEach fails t, naming when, unless every line logged was handed
// on, once (call it when no goroutine can log or hand on any more), and
// returns the lines handed.
func (c *LineTally) RequireEach(t testing.TB, when string) []string {
	t.Helper()
	n, lines := c.Handed()
	if logged := c.logged.Load(); logged != n {
		t.Fatalf("%s: %d lines logged (Enabled asked), %d handed on (Handle called)", when, logged, n)
	}
	return lines
}

type tallyHandler struct {
	c     *LineTally
	attrs string
}

func (h tallyHandler) Enabled(context.Context, slog.Level) bool {
	h.c.logged.Add(1)
	return true
}

func (h tallyHandler) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	sb.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "duration" {
			fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		}
		return true
	})
	h.c.mu.Lock()
	h.c.lines = append(h.c.lines, sb.String())
	h.c.mu.Unlock()
	return nil
}

func (h tallyHandler) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		h.attrs += fmt.Sprintf(" %s=%v", a.Key, a.Value)
	}
	return h
}

func (h tallyHandler) WithGroup(string) slog.Handler { return h }

// Warned keeps the messages of the lines at Warn or above that its
// Logger is handed, in order; safe for concurrent use. The zero Warned
// is ready to use.
type Warned struct {
	mu   sync.Mutex
	msgs []string
}

// Logger returns a logger whose lines at Warn or above w keeps.
func (w *Warned) Logger() *slog.Logger {
	return slog.New(LineFunc(func(r slog.Record) {
		if r.Level >= slog.LevelWarn {
			w.mu.Lock()
			w.msgs = append(w.msgs, r.Message)
			w.mu.Unlock()
		}
	}))
}

// Messages returns the messages kept so far.
func (w *Warned) Messages() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.msgs)
}
