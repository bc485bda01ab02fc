package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSlowClientsAreCut: a client that sends its headers and then stalls
// in the body, or one that keeps its connection idle after a request,
// has its connection closed once the server's limits pass; the server
// had only a limit on the headers, and such a client held a goroutine
// and a socket for as long as it liked. The limits are made short here;
// the test waits for the server to close each connection, never for a
// time.
func TestSlowClientsAreCut(t *testing.T) {
	oldRead, oldIdle := readTimeout, idleTimeout
	readTimeout, idleTimeout = 100*time.Millisecond, 100*time.Millisecond
	t.Cleanup(func() { readTimeout, idleTimeout = oldRead, oldIdle })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := startRun(ctx, t, io.Discard)
	defer func() { require.NoError(t, stop()) }()

	// A body that stalls.
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"customer\":")
	require.NoError(t, err)
	deadline, _ := ctx.Deadline()
	require.NoError(t, c.SetReadDeadline(deadline))
	_, err = io.Copy(io.Discard, c)
	require.NoError(t, err, "the server kept the connection open")

	// A kept-alive connection left idle after its request was answered.
	idleClosed(ctx, t, addr)
}

// idleClosed sends a request on a new connection to addr, reads its
// answer, and then waits for the server to close the connection left
// idle, failing the test if that takes until ctx's deadline.
func idleClosed(ctx context.Context, t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "GET /orders/none HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	deadline, _ := ctx.Deadline()
	require.NoError(t, c.SetReadDeadline(deadline))
	_, err = io.Copy(io.Discard, br)
	require.NoError(t, err, "the server kept the idle connection open")
}

// TestIdleTimeoutIsItsOwn: a kept-alive connection left idle is
// closed once idleTimeout passes, even when readTimeout is long. In
// TestSlowClientsAreCut both limits are short, and net/http falls back
// to ReadTimeout for a server without an IdleTimeout, so a server that
// lost its IdleTimeout passed it (an idle connection then stays for
// readTimeout's 30 s, not idleTimeout's 2 minutes).
func TestIdleTimeoutIsItsOwn(t *testing.T) {
	oldRead, oldIdle := readTimeout, idleTimeout
	readTimeout, idleTimeout = time.Hour, 100*time.Millisecond
	t.Cleanup(func() { readTimeout, idleTimeout = oldRead, oldIdle })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := startRun(ctx, t, io.Discard)
	defer func() { require.NoError(t, stop()) }()

	idleClosed(ctx, t, addr)
}
