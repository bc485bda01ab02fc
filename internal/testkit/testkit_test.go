package testkit

// The kit's own tests. The suites that use the kit pass whether or not it
// catches what it is for, so each test here fails against a mutant of it.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNoPanic: a panic becomes a failure naming the case, and an error; a
// call that returns is left alone, its error returned.
func TestNoPanic(t *testing.T) {
	var err error
	r := Record(t, func(tb testing.TB) { err = NoPanic(tb, "the case", func() error { panic("boom") }) })
	require.True(t, r.Failed())
	require.Contains(t, strings.Join(r.Msgs, "\n"), "the case: panicked: boom")
	require.ErrorContains(t, err, "panic: boom")

	want := errors.New("refused")
	r = Record(t, func(tb testing.TB) { err = NoPanic(tb, "the case", func() error { return want }) })
	require.False(t, r.Failed())
	require.Same(t, want, err)
}

// TestSpinUntil: it returns once cond holds, and fails the test, with
// its message and guard, when cond never does (here a guard of 10 ms in
// place of HangGuard), where a bare loop spun until go test's -timeout.
func TestSpinUntil(t *testing.T) {
	looks := 0
	r := Record(t, func(tb testing.TB) { SpinUntil(tb, func() bool { looks++; return looks == 3 }, "never") })
	require.False(t, r.Failed())
	require.Equal(t, 3, looks)

	r = Record(t, func(tb testing.TB) {
		spinUntil(tb, 10*time.Millisecond, func() bool { return false }, "no %s", "goroutine")
	})
	require.True(t, r.Failed())
	require.Equal(t, []string{"no goroutine (not within 10ms)"}, r.Msgs)
}

// TestAwaitHold: it returns what the hold gives once it is reached;
// it fails the test at once, naming the call and its answer, when the
// call answers first; and at its guard (here 10 ms in place of
// HangGuard) when neither comes. Await is the guard alone, with a
// message of its own.
func TestAwaitHold(t *testing.T) {
	hold, answer := make(chan string, 1), make(chan error, 1)
	hold <- "held"
	var got string
	r := Record(t, func(tb testing.TB) { got = AwaitHold(tb, hold, answer, "Produce") })
	require.False(t, r.Failed())
	require.Equal(t, "held", got)

	answer <- errors.New("refused")
	r = Record(t, func(tb testing.TB) { AwaitHold(tb, hold, answer, "Produce") })
	require.True(t, r.Failed())
	require.Equal(t, []string{"Produce returned (refused) before it reached its hold"}, r.Msgs)

	r = Record(t, func(tb testing.TB) { awaitHold(tb, 10*time.Millisecond, hold, answer, "Produce") })
	require.True(t, r.Failed())
	require.Equal(t, []string{"Produce did not reach its hold within 10ms"}, r.Msgs)

	closed := make(chan struct{})
	close(closed)
	r = Record(t, func(tb testing.TB) { Await(tb, closed, "the sender") })
	require.False(t, r.Failed())
	r = Record(t, func(tb testing.TB) { await(tb, 10*time.Millisecond, make(chan error), "Produce's answer") })
	require.True(t, r.Failed())
	require.Equal(t, []string{"Produce's answer did not come within 10ms"}, r.Msgs)
}

// TestPastInt32: math.MaxInt32+n where int has 64 bits; a negative
// number where it has 32.
func TestPastInt32(t *testing.T) {
	if strconv.IntSize == 64 {
		require.EqualValues(t, int64(math.MaxInt32)+5, PastInt32(5))
	} else {
		require.Negative(t, PastInt32(5))
	}
}

// TestSkipIfCannotExec: only ENOEXEC, wrapped or not, skips.
func TestSkipIfCannotExec(t *testing.T) {
	for _, c := range []struct {
		err  error
		skip bool
	}{
		{nil, false},
		{errors.New("exit status 1"), false},
		{syscall.ENOENT, false},
		{syscall.ENOEXEC, true},
		{&os.PathError{Op: "fork/exec", Path: "/x.test", Err: syscall.ENOEXEC}, true},
	} {
		r := Record(t, func(tb testing.TB) { SkipIfCannotExec(tb, c.err) })
		require.Equal(t, c.skip, r.Skipped(), "%v", c.err)
		require.False(t, r.Failed())
	}
}

// TestSeeds: seeds from 1, as many as asked (the short number under
// -short); $ENV=N runs N; $ENV_BASE=S starts from S.
func TestSeeds(t *testing.T) {
	seeds := func(n, short int) []uint64 {
		var got []uint64
		Seeds(t, "RUNNEL_TESTKIT_SEEDS", n, short, func(t *testing.T, seed uint64) { got = append(got, seed) })
		return got
	}
	t.Setenv("RUNNEL_TESTKIT_SEEDS", "")
	t.Setenv("RUNNEL_TESTKIT_SEEDS_BASE", "")
	if testing.Short() {
		require.Equal(t, []uint64{1, 2}, seeds(4, 2))
	} else {
		require.Equal(t, []uint64{1, 2, 3, 4}, seeds(4, 2))
	}
	t.Setenv("RUNNEL_TESTKIT_SEEDS_BASE", "40")
	require.Equal(t, []uint64{40}, seeds(1, 1))
	t.Setenv("RUNNEL_TESTKIT_SEEDS", "3")
	require.Equal(t, []uint64{40, 41, 42}, seeds(1, 1))
	t.Setenv("RUNNEL_TESTKIT_SEEDS_BASE", "")
	got := seeds(1, 1)
	require.Len(t, got, 3)
	require.Equal(t, []uint64{got[0], got[0] + 1, got[0] + 2}, got)
	require.NotEqual(t, uint64(1), got[0], "the first seed is picked from the clock")
}

// TestSeedsSideBySide: every seed runs once, as Seeds runs them, up to
// width of them at once: three seeds of width 3 wait for one another,
// and no more than 2 of 6 of width 2 run at once.
func TestSeedsSideBySide(t *testing.T) {
	t.Setenv("RUNNEL_TESTKIT_SEEDS", "")
	t.Setenv("RUNNEL_TESTKIT_SEEDS_BASE", "")
	var mu sync.Mutex
	var got []uint64
	var started, running, most int
	SeedsSideBySide(t, "RUNNEL_TESTKIT_SEEDS", 3, 3, 3, func(t *testing.T, seed uint64) {
		mu.Lock()
		got = append(got, seed)
		started++
		mu.Unlock()
		SpinUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return started == 3 }, "the three seeds side by side")
	})
	slices.Sort(got)
	require.Equal(t, []uint64{1, 2, 3}, got)
	got = nil
	SeedsSideBySide(t, "RUNNEL_TESTKIT_SEEDS", 6, 6, 2, func(t *testing.T, seed uint64) {
		mu.Lock()
		got = append(got, seed)
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(time.Millisecond) // a wait, for the others to start in if they could
		mu.Lock()
		running--
		mu.Unlock()
	})
	slices.Sort(got)
	require.Equal(t, []uint64{1, 2, 3, 4, 5, 6}, got)
	require.LessOrEqual(t, most, 2)
}

// TestSeedsChild is TestSeedsStops' child: it runs only in a copy of the
// test binary that TestSeedsStops starts, with
// RUNNEL_TESTKIT_CHILD naming what to run.
func TestSeedsChild(t *testing.T) {
	switch os.Getenv("RUNNEL_TESTKIT_CHILD") {
	case "fail":
		Seeds(t, "RUNNEL_TESTKIT_SEEDS", 10, 10, func(t *testing.T, seed uint64) { t.Fatal("fails") })
	case "sidebyside":
		SeedsSideBySide(t, "RUNNEL_TESTKIT_SEEDS", 10, 10, 2, func(t *testing.T, seed uint64) { t.Fatal("fails") })
	case "env":
		Seeds(t, "RUNNEL_TESTKIT_SEEDS", 10, 10, func(t *testing.T, seed uint64) {})
	case "second", "panic":
		Seeds(t, "RUNNEL_TESTKIT_SEEDS", 3, 3, func(t *testing.T, seed uint64) {
			t.Logf("seed %d ran", seed)
			if seed%3 == 2 { // the second of the default seeds, or of 70, 71, 72
				if os.Getenv("RUNNEL_TESTKIT_CHILD") == "panic" {
					panic("fails")
				}
				t.Fatal("fails")
			}
		})
	default:
		t.Skip("TestSeedsStops' child")
	}
}

// failingSeedsChild runs the tests of pattern in a child of the test
// binary, TestSeedsChild in mode with the seeds' variables cleared and
// then env set, requires that it fails, and returns its output.
func failingSeedsChild(t *testing.T, mode, pattern string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+pattern, "-test.v")
	cmd.Env = append(os.Environ(), append([]string{"RUNNEL_TESTKIT_CHILD=" + mode, "RUNNEL_TESTKIT_SEEDS=", "RUNNEL_TESTKIT_SEEDS_BASE="}, env...)...)
	out, err := cmd.CombinedOutput()
	SkipIfCannotExec(t, err)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	return string(out)
}

// TestSeedsStops: Seeds stops after three seeds failed, and fails a test
// whose $ENV is no positive number, or whose $ENV_BASE is no number.
func TestSeedsStops(t *testing.T) {
	child := func(mode string, env ...string) string {
		return failingSeedsChild(t, mode, "^TestSeedsChild$", env...)
	}
	out := child("fail")
	require.Equal(t, 3, strings.Count(out, "--- FAIL: TestSeedsChild/seed="), out)
	race := map[bool]string{true: " -race"}[RaceEnabled]
	require.Contains(t, out, "replay: RUNNEL_TESTKIT_SEEDS_BASE=3 go test"+race+" -run '^TestSeedsChild$/^seed=3$' ./internal/testkit\n", out)
	// Side by side, the seeds running when the third failed finish: one
	// more of width 2.
	out = child("sidebyside")
	if n := strings.Count(out, "--- FAIL: TestSeedsChild/seed="); n < 3 || n > 4 {
		t.Fatalf("side by side, %d seeds failed, want 3 or 4:\n%s", n, out)
	}
	out = child("fail", "RUNNEL_TESTKIT_SEEDS=2", "RUNNEL_TESTKIT_SEEDS_BASE=40")
	require.Contains(t, out, "replay: RUNNEL_TESTKIT_SEEDS=1 RUNNEL_TESTKIT_SEEDS_BASE=41 go test"+race+" -run '^TestSeedsChild$/^seed=41$' ./internal/testkit\n", out)
	for _, env := range []string{"RUNNEL_TESTKIT_SEEDS=0", "RUNNEL_TESTKIT_SEEDS=-2", "RUNNEL_TESTKIT_SEEDS=many", "RUNNEL_TESTKIT_SEEDS_BASE=x"} {
		out := child("env", env)
		require.Contains(t, out, "--- FAIL: TestSeedsChild ", env)
		require.NotContains(t, out, "TestSeedsChild/seed=", env)
	}
}

// TestSeedsReplay: the replay line of a failed seed (of a failed check
// or a panic, from the default seeds or from $ENV's) runs that seed
// alone, and it fails again there.
func TestSeedsReplay(t *testing.T) {
	run := func(mode, pattern string, env ...string) string {
		return failingSeedsChild(t, mode, pattern, env...)
	}
	for _, tc := range []struct {
		mode string
		env  []string
		seed int
	}{{"second", nil, 2}, {"panic", nil, 2}, {"second", []string{"RUNNEL_TESTKIT_SEEDS=3", "RUNNEL_TESTKIT_SEEDS_BASE=70"}, 71}} {
		out := run(tc.mode, "^TestSeedsChild$", tc.env...)
		require.Contains(t, out, fmt.Sprintf("seed %d ran", tc.seed-1), out)
		require.Contains(t, out, fmt.Sprintf("seed %d ran", tc.seed), out)
		_, line, ok := strings.Cut(out, "replay: ")
		require.True(t, ok, "no replay line:\n%s", out)
		line, _, _ = strings.Cut(line, "\n")
		// NAME=value ... go test [-short] [-race] -run 'pattern' ./internal/testkit
		vars, rest, ok := strings.Cut(line, "go test")
		require.True(t, ok, line)
		_, pattern, ok := strings.Cut(rest, "-run '")
		require.True(t, ok, line)
		pattern, _, _ = strings.Cut(pattern, "'")
		again := run(tc.mode, pattern, strings.Fields(vars)...)
		require.Contains(t, again, fmt.Sprintf("seed %d ran", tc.seed), again)
		require.NotContains(t, again, fmt.Sprintf("seed %d ran", tc.seed-1), again)
		require.NotContains(t, again, fmt.Sprintf("seed %d ran", tc.seed+1), again)
		require.Contains(t, again, "replay: "+line+"\n", "the replay's own replay line is the same")
	}
}

// endsAtSecondWait is a context that ends for the second wait on it (its
// second Done), so that a wait for a call whose Close came is the one
// that ends.
type endsAtSecondWait struct {
	context.Context
	waits int
}

func (c *endsAtSecondWait) Done() <-chan struct{} {
	if c.waits++; c.waits < 2 {
		return nil // never ends
	}
	done := make(chan struct{})
	close(done)
	return done
}

// TestCloseFromCall: Close's nil and the call's nil or errClosed pass;
// any other error of either, or either not coming before ctx ends, fails.
func TestCloseFromCall(t *testing.T) {
	errClosed := errors.New("closed")
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	ch := func(err error) <-chan error {
		c := make(chan error, 1)
		c <- err
		return c
	}
	never := make(chan error)
	for _, c := range []struct {
		name         string
		closed, call <-chan error
		fails        string
	}{
		{"both nil", ch(nil), ch(nil), ""},
		{"call closed", ch(nil), ch(fmt.Errorf("produce: %w", errClosed)), ""},
		{"Close fails", ch(errors.New("x")), ch(nil), "Close returned x"},
		{"call fails", ch(nil), ch(errors.New("y")), "the call ended with y"},
		{"Close hangs", never, ch(nil), "does not return"},
		{"call hangs", ch(nil), never, "does not return"},
	} {
		ctx := context.Background()
		switch c.name {
		case "Close hangs":
			ctx = canceled
		case "call hangs":
			ctx = &endsAtSecondWait{Context: ctx}
		}
		r := Record(t, func(tb testing.TB) { CloseFromCall(tb, ctx, c.closed, c.call, errClosed, c.name) })
		if c.fails == "" {
			require.False(t, r.Failed(), "%s: %v", c.name, r.Msgs)
		} else {
			require.True(t, r.Failed(), c.name)
			require.Contains(t, strings.Join(r.Msgs, "\n"), c.name, c.name)
			require.Contains(t, strings.Join(r.Msgs, "\n"), c.fails, c.name)
		}
	}
}
