package producer_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A promise that ends the producer's goroutine with runtime.Goexit — what
// t.FailNow, t.Fatal or a require assertion does in a promise of a test,
// when the record it checks failed — must not leave the producer with a
// partition whose goroutine is gone: before the fix, the partition's
// later records were never sent nor failed, and a ProduceSync to it
// waited for ever, its ctx's end notwithstanding (a test binary then hung
// until go test's -timeout). The producer now stops the program at once,
// as it does for a promise that panics, saying what ended its goroutine.
// Run in a child process, which must end on its own within the wait.
func TestPromiseGoexitStopsTheProgram(t *testing.T) {
	if os.Getenv("RUNNEL_PROMISE_GOEXIT_CHILD") == "1" {
		promiseGoexitChild(t)
		return
	}
	out := stoppedChild(t, "RUNNEL_PROMISE_GOEXIT_CHILD", "TestPromiseGoexitStopsTheProgram")
	require.Contains(t, out, "ended the producer's goroutine", "%s", out)
	require.Contains(t, out, "t.FailNow", "%s", out)
}

// stoppedChild runs the test named child again in a process of its own,
// with env set to 1, and returns its output once it has stopped, as it
// must, with a failure, within testkit.HangGuard (a child that hangs
// fails the test then).
func stoppedChild(t *testing.T, env, child string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testkit.HangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^"+child+"$", "-test.v", "-test.timeout", "10m")
	cmd.Env = append(os.Environ(), env+"=1")
	out, err := cmd.CombinedOutput()
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, ctx.Err(), "the child hung (a ProduceSync waiting for a partition whose goroutine is gone):\n%s", out)
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the child should stop:\n%s", out)
	return string(out)
}

func promiseGoexitChild(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: errors.New("injected"), Count: 1})
	p, err := producer.New(f)
	require.NoError(t, err)
	p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("a")}, func(_ *record.Record, err error) {
		require.NoError(t, err) // fails: t.FailNow on the producer's goroutine
	})
	produceBehindTheGoexit(t, p)
}

// produceBehindTheGoexit produces a record to the partition whose
// goroutine a promise or a Client's method ends, and waits for it with
// no deadline: the program stops meanwhile, at the Goexit (or the
// promise's panic), whenever that comes. (A wait with a deadline, which
// a loaded machine could reach before the Goexit, let the child return
// and pass; without the producer's guard, the wait never ends, and
// stoppedChild fails at its hang guard.)
func produceBehindTheGoexit(t *testing.T, p *producer.Producer) {
	t.Logf("ProduceSync after the Goexit: %v", p.ProduceSync(context.Background(), &record.Record{Topic: "t", Value: []byte("b")}))
}

// goexitClient is a Client of a test's own whose Produce ends its
// goroutine (a require assertion on the request that fails) once.
type goexitClient struct {
	producer.Client
	t    *testing.T
	once sync.Once
}

func (c *goexitClient) Produce(ctx context.Context, req *api.ProduceRequest) (api.ProduceResponse, error) {
	c.once.Do(func() { require.Equal(c.t, "other", req.Topic) })
	return c.Client.Produce(ctx, req)
}

// As TestPromiseGoexitStopsTheProgram, for a Client's method that ends
// the producer's goroutine.
func TestClientGoexitStopsTheProgram(t *testing.T) {
	if os.Getenv("RUNNEL_CLIENT_GOEXIT_CHILD") == "1" {
		b := runneltest.NewBroker(t, runneltest.Topic("t", 1))
		p, err := producer.New(&goexitClient{Client: b, t: t})
		require.NoError(t, err)
		p.Produce(context.Background(), &record.Record{Topic: "t", Value: []byte("a")}, nil)
		produceBehindTheGoexit(t, p)
		return
	}
	out := stoppedChild(t, "RUNNEL_CLIENT_GOEXIT_CHILD", "TestClientGoexitStopsTheProgram")
	require.Contains(t, out, "ended the producer's goroutine", "%s", out)
}

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
		produceBehindTheGoexit(t, p)
		return
	}
	out := stoppedChild(t, "RUNNEL_PROMISE_PANIC_CHILD", "TestPromisePanicKeepsItsValue")
	require.Contains(t, out, "panic: the promise's own panic", "%s", out)
	require.NotContains(t, out, "ended the producer's goroutine", "%s", out)
}
