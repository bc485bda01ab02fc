package main

import (
	"bufio"
	"context"
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
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestSignalShutsDownCleanly$")
			cmd.Env = append(os.Environ(), mainChildEnv+"=-addr\n127.0.0.1:0\n-dir\n"+dir)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			cmd.Stderr = os.Stderr
			require.NoError(t, cmd.Start())
			defer cmd.Process.Kill()

			lines := bufio.NewScanner(stdout)
			addr := regexp.MustCompile(`msg=serving addr=(\S+)`)
			var url string
			for url == "" && lines.Scan() {
				if m := addr.FindStringSubmatch(lines.Text()); m != nil {
					url = "http://" + m[1]
				}
			}
			require.NotEmpty(t, url, "the child did not say where it serves")
			go func() { // the rest of its output, so that it never blocks writing
				for lines.Scan() {
				}
			}()
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
