// Package testkit holds the small helpers that the tests of most of
// runnel's packages share: NoPanic for the bad-input tables of the root
// package, producer and consumer, seeded runs (Seeds), crash-point and
// file-operation traces (FSOp, OpTrace), child processes (ChildMain,
// RunMain, MainExit), log-line tallies, allocation counts, a bounded
// spin (SpinUntil) and a wait for a goroutine parked in a call
// (AwaitParked). It is internal: test support, imported only by
// tests; of runnel's packages it imports only vfs.
package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// HangGuard bounds a test's real-time wait for something that must
// happen (a goroutine to return, a line to come, a call to show in the
// goroutines' stacks, a scenario's precondition): a hang then fails the
// test with a message of its own rather than at go test's -timeout. It
// measures nothing (a passing test never waits it out), so it is long:
// CI runs the race detector on two busy shared cores, where what takes a
// millisecond here may take seconds. In a synctest bubble it counts on
// the bubble's fake clock, as every wait there does.
const HangGuard = time.Minute

// SpinUntil returns once cond holds, looking again after each
// runtime.Gosched (another goroutine is to make it hold, with nothing to
// wait on: a goroutine's stack, a flag), or fails t after HangGuard: a
// state that never comes (a bug, a function renamed) fails the test at
// its guard rather than spinning until go test's -timeout. cond runs on
// the calling goroutine, so it may assert. On the real clock only: in a
// synctest bubble the clock stands still while the loop runs (there,
// synctest.Wait, or a bound on the looks).
func SpinUntil(t testing.TB, cond func() bool, format string, args ...any) {
	t.Helper()
	spinUntil(t, HangGuard, cond, format, args...)
}

// AwaitHold returns what hold gives (a send, or its close) once the
// call under test has reached a hold that a hook or fault injector keeps
// it in until the test lets it go. answer is the channel the call's
// goroutine answers on: a call that returns without reaching the hold
// (an error first, a path that no longer passes the hook) never will,
// and AwaitHold fails t at once, naming the call (what) and its answer,
// where a bare receive from hold waited until go test's -timeout; it
// fails t after HangGuard too. Only for a hold that keeps the call: one
// that lets it go on could see the call answer just after reaching it,
// and fail a sound test. On the real clock, on t's goroutine (in a
// synctest bubble a bare wait fails at once as a deadlock).
func AwaitHold[H, A any](t testing.TB, hold <-chan H, answer <-chan A, what string) H {
	t.Helper()
	return awaitHold(t, HangGuard, hold, answer, what)
}

// awaitHold is AwaitHold with its guard.
func awaitHold[H, A any](t testing.TB, guard time.Duration, hold <-chan H, answer <-chan A, what string) H {
	t.Helper()
	timer := time.NewTimer(guard)
	defer timer.Stop()
	select {
	case h := <-hold:
		return h
	case a := <-answer:
		t.Fatalf("%s returned (%v) before it reached its hold", what, a)
	case <-timer.C:
		t.Fatalf("%s did not reach its hold within %v", what, guard)
	}
	var zero H
	return zero
}

// Await returns what c gives (a send, or its close), or fails t after
// HangGuard, naming what it waited for (what did not come): for a
// goroutine's answer (a call's outcome, a promise, a goroutine's end),
// and for a hold reached by a goroutine the test has no answer of (a
// client's background sender), where AwaitHold does not fit; so that a
// hang fails the test at its guard rather than at go test's -timeout.
// On the real clock, on t's goroutine (in a synctest bubble a bare wait
// fails at once as a deadlock).
func Await[H any](t testing.TB, c <-chan H, what string) H {
	t.Helper()
	return await(t, HangGuard, c, what)
}

// await is Await with its guard.
func await[H any](t testing.TB, guard time.Duration, c <-chan H, what string) H {
	t.Helper()
	timer := time.NewTimer(guard)
	defer timer.Stop()
	select {
	case h := <-c:
		return h
	case <-timer.C:
		t.Fatalf("%s did not come within %v", what, guard)
	}
	var zero H
	return zero
}

// spinUntil is SpinUntil with its guard.
func spinUntil(t testing.TB, guard time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	for deadline := time.Now().Add(guard); !cond(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf(format+" (not within %v)", append(args, guard)...)
		}
	}
}

// NoPanic runs f and turns a panic into a test failure naming the case
// (and an error returned), so that one bad case does not hide the others.
func NoPanic(t testing.TB, name string, f func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s: panicked: %v", name, r)
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return f()
}

// PastInt32 is math.MaxInt32+n as an int, computed at run time so that
// the tests compile where int has 32 bits (there it wraps to a negative
// number, which the calls under test refuse too).
func PastInt32(n int64) int { return int(int64(math.MaxInt32) + n) }

// SkipIfCannotExec skips t when err, from starting a child copy of the
// test binary (os.Executable or os.Args[0]), says that this machine
// cannot execute the binary at all (ENOEXEC, "exec format error"): the
// binary is built for another architecture and runs under user-mode
// emulation (qemu-aarch64 ./pkg.test, or go test -exec qemu-aarch64)
// without binfmt_misc to hand the child to the emulator as well. The
// test needs the child, so it cannot run there; it says so rather than
// fail. Any other err is left to the caller.
func SkipIfCannotExec(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("cannot start a copy of the test binary (%v): it is built for %s/%s, which this machine runs only under emulation (qemu-user without binfmt_misc runs the test binary, not the children it starts)", err, runtime.GOOS, runtime.GOARCH)
	}
}

// ClockSeed returns a first seed for a long run, picked from the clock:
// so that a long run tries seeds the last one did not. 40 bits, short
// enough to type into a replay command.
func ClockSeed() uint64 { return uint64(time.Now().UnixNano()) & (1<<40 - 1) }

// Seeds runs a seeded randomized test: run, in a subtest named seed=S,
// for each of a few seeds from 1 (seeds of them, short under -short), or
// as the environment says: $ENV=N runs N seeds from one picked from the
// clock, $ENV_BASE=S makes S the first (with N=1, replays seed S). It
// logs the range, and a failing seed's replay (see ReplayOnFailure: the
// command that runs that seed alone, with this run's -short and -race),
// and stops after three seeds failed.
func Seeds(t *testing.T, env string, seeds, short int, run func(t *testing.T, seed uint64)) {
	t.Helper()
	seedsSideBySide(t, env, seeds, short, 1, run)
}

// SeedsSideBySide is Seeds running up to width seeds at once, each
// seed's subtest run from a goroutine of its own (t.Parallel would run
// GOMAXPROCS of them at a time, and the test's others beside them): for
// a test whose seeds spend most of their time waiting (a fetch's MaxWait,
// a poll's timeout), where a seed's waits are its own. A seed must share
// nothing with another (a broker, a store, a clock, goleak's snapshot of
// the goroutines). It stops starting seeds once three failed.
func SeedsSideBySide(t *testing.T, env string, seeds, short, width int, run func(t *testing.T, seed uint64)) {
	t.Helper()
	seedsSideBySide(t, env, seeds, short, width, run)
}

func seedsSideBySide(t *testing.T, env string, seeds, short, width int, run func(t *testing.T, seed uint64)) {
	t.Helper()
	base := uint64(1)
	if testing.Short() {
		seeds = short
	}
	if v := os.Getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a number of seeds", env, v)
		}
		seeds, base = n, ClockSeed()
	}
	if v := os.Getenv(env + "_BASE"); v != "" {
		b, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s_BASE=%q: %v", env, v, err)
		}
		base = b
	}
	t.Logf("seeds %d to %d (%s=%d %s_BASE=%d)", base, base+uint64(seeds)-1, env, seeds, env, base)
	one := func(seed uint64) bool {
		return t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			// The command that runs this seed alone, with the same
			// settings: $ENV=1 only if $ENV was set (a test may size
			// its run by it), else the default run from this seed.
			vars := []string{fmt.Sprintf("%s_BASE=%d", env, seed)}
			if os.Getenv(env) != "" {
				vars = append([]string{env + "=1"}, vars...)
			}
			defer ReplayOnFailure(t, vars...)()
			run(t, seed)
		})
	}
	var failures atomic.Int32
	if width <= 1 {
		for seed := base; seed < base+uint64(seeds) && failures.Load() < 3; seed++ {
			if !one(seed) {
				failures.Add(1)
			}
		}
		return
	}
	slots := make(chan struct{}, width)
	var wg sync.WaitGroup
	defer wg.Wait()
	for seed := base; seed < base+uint64(seeds); seed++ {
		slots <- struct{}{}
		if failures.Load() >= 3 {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			if !one(seed) {
				failures.Add(1)
			}
		})
	}
}

// ReplayOnFailure makes t log, if it fails, the go test command that
// runs t alone again: the environment variables vars (NAME=value), -short
// and -race if this run has them, -run with t's name anchored level by
// level, and the package's directory from the module's root. A
// randomized test calls it first, with the variables that fix its seed,
// so that CI's log says how to replay a failure:
//
//	defer testkit.ReplayOnFailure(t, "RUNNEL_X_SEED=42")()
//
// A failed check or t.Fatal is caught by a Cleanup, so also a failure
// in another Cleanup; a panic in t's goroutine by the deferred function
// (it leaves t unfailed until its Cleanups ran), which panics on.
func ReplayOnFailure(t testing.TB, vars ...string) func() {
	t.Helper()
	logged := false
	log := func() {
		if !logged {
			logged = true
			t.Logf("replay: %s", ReplayCommand(t, vars...))
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			log()
		}
	})
	return func() {
		if r := recover(); r != nil {
			log()
			panic(r)
		}
	}
}

// RapidReplay makes a rapid test log, if it fails, the command that
// replays it with rapid's seed. rapid's own message gives -run and
// -rapid.seed=N, but not this run's -short, and under -short rapid's
// Repeat takes half as many steps, so that a seed of a -short run (CI's
// race run) draws another case without it. A failing property's panic is
// rapid's failure, so a Cleanup sees it.
func RapidReplay(t *testing.T) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay: %s -rapid.seed=N (N: the seed rapid printed above)", ReplayCommand(t))
		}
	})
}

// ReplayCommand returns the go test command that runs t alone again
// (see ReplayOnFailure).
func ReplayCommand(t testing.TB, vars ...string) string {
	var b strings.Builder
	for _, v := range vars {
		b.WriteString(v + " ")
	}
	b.WriteString("go test")
	if testing.Short() {
		b.WriteString(" -short")
	}
	if RaceEnabled {
		b.WriteString(" -race")
	}
	levels := strings.Split(t.Name(), "/")
	for i, l := range levels {
		levels[i] = "^" + regexp.QuoteMeta(l) + "$"
	}
	fmt.Fprintf(&b, " -run '%s' %s", strings.Join(levels, "/"), packageDir)
	return b.String()
}

// packageDir is the test binary's package as go test takes it, the
// directory it runs in relative to the module's root ("./log", "."):
// go test runs a package's test binary in the package's directory.
var packageDir = func() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			rel, err := filepath.Rel(dir, wd)
			if err != nil || rel == "." {
				return "."
			}
			return "./" + filepath.ToSlash(rel)
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "."
		}
		dir = up
	}
}()

// CloseFromCall waits for a client's Close called from inside one of its
// own calls (a promise, a Client's method, a Fault's Match), and for the
// call: Close's error comes on closed, the call's on call. Close must
// return nil, and the call nil or an error matching errClosed (the
// broker may have answered it anyway), both before ctx ends; what names
// the scenario when they do not.
func CloseFromCall(t testing.TB, ctx context.Context, closed, call <-chan error, errClosed error, what string) {
	t.Helper()
	for i, ch := range []<-chan error{closed, call} {
		select {
		case err := <-ch:
			switch {
			case i == 0 && err != nil:
				t.Fatalf("%s: Close returned %v", what, err)
			case i == 1 && err != nil && !errors.Is(err, errClosed):
				t.Fatalf("%s: the call ended with %v, not nil or %v", what, err, errClosed)
			}
		case <-ctx.Done():
			t.Fatalf("%s does not return", what)
		}
	}
}

// Recorder is a testing.TB that records failures and skips instead of
// failing or skipping the test, for tests of test helpers (that a check
// fails when it should); FailNow, Fatalf and Skipf end the goroutine it
// runs on, as the testing package's do (see Record).
type Recorder struct {
	testing.TB
	failed, skipped bool
	Msgs            []string // the failures' messages
}

// Failed reports whether a failure was recorded.
func (r *Recorder) Failed() bool { return r.failed }

// Skipped reports whether a skip was recorded.
func (r *Recorder) Skipped() bool { return r.skipped }

// Helper does nothing: a Recorder reports no lines.
func (r *Recorder) Helper() {}

// Logf drops the message.
func (r *Recorder) Logf(string, ...any) {}

// Errorf records a failure.
func (r *Recorder) Errorf(f string, a ...any) {
	r.failed = true
	r.Msgs = append(r.Msgs, fmt.Sprintf(f, a...))
}

// FailNow records a failure and ends the goroutine.
func (r *Recorder) FailNow() { r.failed = true; runtime.Goexit() }

// Fatalf records a failure and ends the goroutine.
func (r *Recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); r.FailNow() }

// Skipf records a skip and ends the goroutine.
func (r *Recorder) Skipf(string, ...any) { r.skipped = true; runtime.Goexit() }

// Record runs f with a Recorder on a goroutine of its own (so that its
// FailNow ends only that goroutine), and returns the Recorder once f has
// returned or ended.
func Record(t testing.TB, f func(tb testing.TB)) *Recorder {
	r := &Recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// UntilInTime runs scenario with a real-time limit of first (a delivery
// timeout, a wait) and, each time it reports that its precondition did
// not hold, again with a limit four times longer. A scenario about such
// a limit needs something to happen before it ends (a request sent, a
// retry made, records read), which a loaded machine may not do within a
// short limit; with no clock to stop, a longer limit is the way to give
// it the time. The scenario makes its own broker and clients each time,
// returns false before any assertion when its precondition did not hold,
// and asserts the same outcome at every limit: the test's verdict does
// not depend on the machine's speed, only its length does. A limit past
// HangGuard fails the test (a hang guard, not a measure of speed).
func UntilInTime(t testing.TB, first time.Duration, scenario func(limit time.Duration) bool) {
	t.Helper()
	for limit := first; ; limit *= 4 {
		if limit > HangGuard {
			t.Fatalf("the scenario's precondition failed even with a limit of %v", limit/4)
		}
		if scenario(limit) {
			return
		}
		t.Logf("a limit of %v was too short on this machine for the scenario: again with %v", limit, 4*limit)
	}
}

// RunMain runs a program's main with args (os.Args[1:]), its standard
// output and standard error going to files of their own, and returns
// what each got. main must return (an os.Exit would end the test
// binary). It changes os.Args, os.Stdout and os.Stderr while main runs:
// not for parallel tests.
func RunMain(t testing.TB, main func(), args ...string) (stdout, stderr string) {
	t.Helper()
	dir := t.TempDir()
	outPath, errPath := filepath.Join(dir, "stdout"), filepath.Join(dir, "stderr")
	outF, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	oldArgs, oldOut, oldErr := os.Args, os.Stdout, os.Stderr
	os.Args, os.Stdout, os.Stderr = append([]string{"prog"}, args...), outF, errF
	func() {
		defer func() { os.Args, os.Stdout, os.Stderr = oldArgs, oldOut, oldErr }()
		main()
	}()
	o, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	e, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(o), string(e)
}

// FSOp is one file-system operation of a crash test's run without
// faults: Step, the step of the test's workload that made it, and Name,
// the operation's kind and its file's extension (as "write.log").
type FSOp struct {
	Step int
	Name string
}

// CrashPointsAll reports whether RUNNEL_CRASH_POINTS=all asks the crash
// tests for every crash point rather than those OpPathPoints picks.
func CrashPointsAll() bool { return os.Getenv("RUNNEL_CRASH_POINTS") == "all" }

// EveryAndLast returns s[0], s[every], s[2*every], ... and s's last
// element, which the stride may pass: a sample of a sweep's points that
// reaches its end. An every of 1 or less returns s whole.
func EveryAndLast[T any](s []T, every int) []T {
	if every <= 1 {
		return s
	}
	var out []T
	for i := 0; i < len(s); i += every {
		out = append(out, s[i])
	}
	if len(s) > 0 && (len(s)-1)%every != 0 {
		out = append(out, s[len(s)-1])
	}
	return out
}

// SampleSeedEnv names the variable that replays a sampled sweep's
// sample (see Sample).
const SampleSeedEnv = "RUNNEL_SAMPLE_SEED"

// SampleSeed returns the seed of a sweep's sample for this run of t:
// $RUNNEL_SAMPLE_SEED if set, else one picked from the clock, so that
// runs after runs visit every point. It logs the seed, and if t fails
// the command that replays t with it (ReplayOnFailure).
func SampleSeed(t testing.TB) uint64 {
	t.Helper()
	seed := ClockSeed()
	if v := os.Getenv(SampleSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SampleSeedEnv, v, err)
		}
		seed = s
	}
	t.Logf("sample seed %d (%s=%d replays it)", seed, SampleSeedEnv, seed)
	ReplayOnFailure(t, fmt.Sprintf("%s=%d", SampleSeedEnv, seed))
	return seed
}

// Sample returns a sample of a sweep's points s, about one in every:
// one drawn at random from each run of every points (s[0:every],
// s[every:2*every], ...), and s's first and last, in s's order. The
// draws come from seed (SampleSeed's, a run's), so that each point is
// taken by one run in every on average, spread over s as EveryAndLast's
// stride spreads its sample, with no stride for a periodic sweep (a
// write and its sync, a step's operations) to fall in step with. An
// every of 1 or less returns s whole.
func Sample[T any](s []T, every int, seed uint64) []T {
	if every <= 1 || len(s) == 0 {
		return s
	}
	r := rand.New(rand.NewPCG(seed, uint64(len(s))<<8|uint64(every)))
	keep := make([]bool, len(s))
	keep[0], keep[len(s)-1] = true, true
	for i := 0; i < len(s); i += every {
		keep[i+r.IntN(min(every, len(s)-i))] = true
	}
	var out []T
	for i, k := range keep {
		if k {
			out = append(out, s[i])
		}
	}
	return out
}

// OpPathPoints returns, of the operations ops of a run (the k-th is
// ops[k-1]), each k that is the first operation of its step (a crash
// between two steps) and each whose path no earlier one took: kind(its
// step), its own name and those of the (up to) three operations of its
// step before it. What it leaves out is a fault at a point already taken
// in the same kind of step after the same operations (a second append
// that rolls, another partition's sync, a compaction's rewrite of
// another segment, ...).
func OpPathPoints(ops []FSOp, kind func(step int) string) []int {
	seen := map[string]bool{}
	var ks []int
	for k := 1; k <= len(ops); k++ {
		o := ops[k-1]
		path := kind(o.Step)
		for j := k - 3; j <= k; j++ {
			if j >= 1 && ops[j-1].Step == o.Step {
				path += "|" + ops[j-1].Name
			} else {
				path += "|^"
			}
		}
		if !seen[path] || k == 1 || ops[k-2].Step != o.Step {
			seen[path] = true
			ks = append(ks, k)
		}
	}
	return ks
}

// LineFunc is a slog.Handler that calls itself with each line, on the
// goroutine that logs it: for the tests of what a Logger's handler may do
// (call back into what logged, close it).
type LineFunc func(r slog.Record)

// Enabled takes every level.
func (f LineFunc) Enabled(context.Context, slog.Level) bool { return true }

// Handle calls f.
func (f LineFunc) Handle(_ context.Context, r slog.Record) error {
	f(r)
	return nil
}

// WithAttrs returns f: the tests look at the lines' messages only.
func (f LineFunc) WithAttrs([]slog.Attr) slog.Handler { return f }

// WithGroup returns f.
func (f LineFunc) WithGroup(string) slog.Handler { return f }

// ChildMain is the first step of a test that runs a program's main in a
// child process (see MainExit): when env is set, this process is that
// child, and ChildMain runs main with os.Args set to prog and the
// newline-separated arguments env holds (none when it is empty), and
// reports true; the test then returns. Otherwise it reports false.
func ChildMain(env, prog string, main func()) bool {
	args, ok := os.LookupEnv(env)
	if !ok {
		return false
	}
	os.Args = []string{prog}
	if args != "" {
		os.Args = append(os.Args, strings.Split(args, "\n")...)
	}
	main()
	return true
}

// MainExit runs the test named test in a child process of the test
// binary, with env set to args (newline-separated; the test calls
// ChildMain first, so the child runs main with them), and returns the
// child's exit status, standard output and standard error. main may call
// os.Exit, which would end the test's own process. It fails the test if
// the child cannot be run or takes more than 30 s, and skips it where
// the test binary cannot start a copy of itself (see SkipIfCannotExec).
func MainExit(t testing.TB, test, env, args string) (code int, stdout, stderr string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("finding the test binary: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env+"="+args)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	SkipIfCannotExec(t, err)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &exit) && ctx.Err() == nil:
		return exit.ExitCode(), out.String(), errOut.String()
	}
	t.Fatalf("running %s in a child process: %v\nstdout: %s\nstderr: %s", test, err, out.String(), errOut.String())
	return 0, "", ""
}

// RunChild runs the test named test again in a child process of the
// test binary (-test.v, -test.timeout 10m, and -test.short if this run
// has it, so that a child samples as its parent does), with env set to
// 1 (the test checks it first, to run as the child), and returns the child's
// combined output and its error (nil when it passed; an *exec.ExitError
// when it failed or stopped). It fails the test if the child has not
// ended within HangGuard, and skips it where the test binary cannot
// start a copy of itself (see SkipIfCannotExec).
func RunChild(t testing.TB, test, env string) (out string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), HangGuard)
	defer cancel()
	flags := []string{"-test.run", "^" + test + "$", "-test.v", "-test.timeout", "10m"}
	if testing.Short() {
		flags = append(flags, "-test.short")
	}
	cmd := exec.CommandContext(ctx, os.Args[0], flags...)
	cmd.Env = append(os.Environ(), env+"=1")
	b, err := cmd.CombinedOutput()
	SkipIfCannotExec(t, err)
	if ctx.Err() != nil {
		t.Fatalf("the child %s has not ended within %v:\n%s", test, HangGuard, b)
	}
	return string(b), err
}

// InChild runs child as t's body in a child process of the test binary,
// which must pass there: t (a top-level test) calls it first, with env,
// the variable that tells the child it is one. In the child InChild runs
// child(t); in the parent it runs the test again there (RunChild) and
// fails t, with the child's output, unless the child passed. For a test
// whose body must be the process's first use of something, or may stop
// the process.
func InChild(t *testing.T, env string, child func(t *testing.T)) {
	t.Helper()
	if os.Getenv(env) == "1" {
		child(t)
		return
	}
	out, err := RunChild(t, t.Name(), env)
	if err != nil || !strings.Contains(out, "--- PASS: "+t.Name()) {
		t.Fatalf("the child %s did not pass (%v):\n%s", t.Name(), err, out)
	}
}

// Allocated returns the bytes f allocated: runtime.MemStats' TotalAlloc
// across the call, after a collection. It counts the whole process's, so
// goroutines that run meanwhile count too: an upper bound.
func Allocated(f func()) int64 {
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	f()
	runtime.ReadMemStats(&m1)
	return int64(m1.TotalAlloc - m0.TotalAlloc)
}
