package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/internal/testkit"
)

// mainChildEnv holds the arguments (newline-separated) with which
// TestSignalShutsDownCleanly's child runs main.
const mainChildEnv = "RUNNEL_TEST_MICROSERVICE_ARGS"

// TestSignalShutsDownCleanly runs the program in a process of its own and
// stops it as a terminal (SIGINT) and as a service manager (SIGTERM:
// Kubernetes, Docker, systemd) do: either way it shuts down cleanly —
// exit status 0, the broker closed (each partition's clean-shutdown
// marker written, so the next start need not recover the logs).
func TestSignalShutsDownCleanly(t *testing.T) {
	if args := os.Getenv(mainChildEnv); args != "" {
		os.Args = append([]string{"microservice"}, strings.Split(args, "\n")...)
		main()
		return
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT or SIGTERM to send on Windows")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dir := t.TempDir()
			cmd, addr := startChild(ctx, t, exe, "TestSignalShutsDownCleanly", dir, os.Stderr)
			url := "http://" + addr
			resp, st := post(t, url, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
			require.Equal(t, http.StatusCreated, resp.StatusCode)
			waitDone(ctx, t, url, st.Order.ID)

			require.NoError(t, cmd.Process.Signal(sig))
			require.NoError(t, cmd.Wait(), "exit after %v", sig)
			for p := range 4 {
				_, err := os.Stat(filepath.Join(dir, OrdersTopic+"-"+strconv.Itoa(p), "clean-shutdown"))
				require.NoError(t, err, "partition %d not closed cleanly", p)
			}
		})
	}
}

// startChild runs the program, on a data directory of its own, in a
// process of its own: the test binary running test (whose first lines
// call main when mainChildEnv is set). It returns the process, killed at
// the test's end, and the address it serves on, read from its log; the
// rest of its output is read and dropped, so that it never blocks.
func startChild(ctx context.Context, t *testing.T, exe, test, dir string, stderr io.Writer) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+test+"$")
	// A shutdown that waits for a request (TestSecondSignalExitsAtOnce)
	// must not give up before the test's second signal, however slow the
	// machine: its timeout is far past the test's own (30 s).
	cmd.Env = append(os.Environ(), mainChildEnv+"=-addr\n127.0.0.1:0\n-dir\n"+dir+"\n-shutdown-timeout\n10m")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = stderr
	err = cmd.Start()
	testkit.SkipIfCannotExec(t, err)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := bufio.NewScanner(stdout)
	addrRE := regexp.MustCompile(`msg=serving addr=(\S+)`)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	require.NotEmpty(t, addr, "the child did not say where it serves")
	go func() {
		for lines.Scan() {
		}
	}()
	return cmd, addr
}

// TestSecondSignalExitsAtOnce: a second SIGINT or SIGTERM during a
// shutdown that waits (here for a request whose body never comes) exits
// at once, with status 130, as most servers do, rather than when the
// shutdown gives up.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	if args := os.Getenv(mainChildEnv); args != "" {
		os.Args = append([]string{"microservice"}, strings.Split(args, "\n")...)
		main()
		return
	}
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT or SIGTERM to send on Windows")
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stderr strings.Builder
			cmd, addr := startChild(ctx, t, exe, "TestSecondSignalExitsAtOnce", t.TempDir(), &stderr)

			// A request whose body never comes holds the shutdown up, once
			// its handler reads the body: the server then answers its
			// Expect: 100-continue (a request only accepted, not read yet,
			// would not hold it, and the shutdown could end before the
			// second signal).
			defer stuckRequest(t, addr).Close()

			require.NoError(t, cmd.Process.Signal(sig))
			// The shutdown has begun once the listener is closed.
			for {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					break
				}
				c.Close()
				require.NoError(t, ctx.Err(), "the listener stays open after %v", sig)
				time.Sleep(10 * time.Millisecond)
			}
			require.NoError(t, cmd.Process.Signal(sig))
			err := cmd.Wait()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, "stderr: %s", stderr.String())
			require.Equal(t, forcedExit, exit.ExitCode(), "stderr: %s", stderr.String())
			require.Contains(t, stderr.String(), "again: exiting at once")
		})
	}
}

// stuckRequest sends the service at addr a POST /orders whose handler
// reads a body that never comes (it has answered the request's Expect:
// 100-continue, and holds a server's Shutdown up), and returns its
// connection, for the caller to close.
func stuckRequest(t *testing.T, addr string) net.Conn {
	t.Helper()
	stuck, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(stuck, "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(stuck).ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, line, "100 Continue", "the handler reads the body")
	_, err = io.WriteString(stuck, "{")
	require.NoError(t, err)
	return stuck
}
