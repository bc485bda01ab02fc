package runnel

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/stretchr/testify/require"
)

// TestHandlerPanicOnABrokerGoroutineStaysItsPanic: a Logger's handler
// that panics on a goroutine of the broker's stops the program with its
// own panic, as it came: goexitGuard, which stops it with errGoexit for a
// runtime.Goexit there, recovers the panic only to panic with it again,
// and says nothing of a Goexit. Run in a child process, which must stop
// on its own.
func TestHandlerPanicOnABrokerGoroutineStaysItsPanic(t *testing.T) {
	if name := os.Getenv("RUNNEL_BROKER_PANIC_CHILD"); name != "" {
		panicChild(t, name)
		return
	}
	for _, c := range goexitLines() {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestHandlerPanicOnABrokerGoroutineStaysItsPanic$", "-test.v", "-test.timeout", "10m")
			cmd.Env = append(os.Environ(), "RUNNEL_BROKER_PANIC_CHILD="+c.name)
			b, err := cmd.CombinedOutput()
			testkit.SkipIfCannotExec(t, err)
			out := string(b)
			require.NoError(t, ctx.Err(), "the child hung:\n%s", out)
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "the child should stop:\n%s", out)
			require.Contains(t, out, "panic: "+handlerPanic+c.line, "%s", out)
			require.Contains(t, out, c.root, "the panic's goroutine:\n%s", out)
			require.NotContains(t, out, errGoexit.Error(), "a panic is no Goexit:\n%s", out)
		})
	}
}

const handlerPanic = "the handler panics on "

// panicChild is the child of TestHandlerPanicOnABrokerGoroutineStaysItsPanic:
// its handler panics on the line of the goexitLine named name. It
// returns, after a while, only if the program went on.
func panicChild(t *testing.T, name string) {
	for _, c := range goexitLines() {
		if c.name != name {
			continue
		}
		var armed, seen atomic.Bool
		handled := make(chan struct{})
		logger := slog.New(testkit.LineFunc(func(r slog.Record) {
			if !armed.Load() || r.Message != c.line || seen.Swap(true) {
				return
			}
			close(handled)
			panic(handlerPanic + r.Message)
		}))
		c.run(t, logger, &armed, handled)
		select {
		case <-handled:
		case <-time.After(20 * time.Second):
			t.Fatalf("no %q line came", c.line)
		}
		time.Sleep(3 * time.Second)
		t.Log("the program went on after the handler's panic")
		return
	}
	t.Fatalf("no goexitLine %q", name)
}

// TestGoexitGuardDerivedHandlersStayGuards: the handlers derived from
// the broker's (a partition's logger's With, a WithGroup of an
// application's wrapper) keep goexitGuard over them: a line logged
// through one is guarded as the broker's own are.
func TestGoexitGuardDerivedHandlersStayGuards(t *testing.T) {
	h := goexitGuard{next: testkit.LineFunc(func(slog.Record) {})}
	require.IsType(t, goexitGuard{}, h.WithGroup("g"))
	require.IsType(t, goexitGuard{}, h.WithAttrs([]slog.Attr{slog.Int("a", 1)}))
	require.IsType(t, goexitGuard{}, h.WithGroup("g").WithAttrs([]slog.Attr{slog.Int("a", 1)}))
}
