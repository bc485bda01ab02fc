package producer_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestPromisePanicKeepsItsValue: spawn's Goexit guard lets a promise's
// panic go on as it came (panic(v)), so the program stops with the
// promise's own panic, not with the Goexit message in its place.
func TestPromisePanicKeepsItsValue(t *testing.T) {
	if os.Getenv("RUNNEL_PROMISE_PANIC_CHILD") == "1" {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		p, err := producer.New(b)
		require.NoError(t, err)
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("a")}, func(*record.Record, error) {
			panic("the promise's own panic")
		})
		time.Sleep(10 * time.Second)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestPromisePanicKeepsItsValue$", "-test.v", "-test.timeout", "10m")
	cmd.Env = append(os.Environ(), "RUNNEL_PROMISE_PANIC_CHILD=1")
	out, err := cmd.CombinedOutput()
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, ctx.Err(), "the child did not stop:\n%s", out)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child should stop:\n%s", out)
	require.Contains(t, string(out), "panic: the promise's own panic", "%s", out)
	require.NotContains(t, string(out), "ended the producer's goroutine", "%s", out)
}
