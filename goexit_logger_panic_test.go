package runnel

import (
	"log/slog"
	"os"
	"testing"

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
			out := stoppedBrokerChild(t, "TestHandlerPanicOnABrokerGoroutineStaysItsPanic", "RUNNEL_BROKER_PANIC_CHILD", c.name)
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
	lineChild(t, name, "after the handler's panic", func(msg string) { panic(handlerPanic + msg) })
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
