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

// TestReview31IdleTimeoutIsItsOwn: a kept-alive connection left idle is
// closed once idleTimeout passes, even when readTimeout is long. In
// TestSlowClientsAreCut both limits are short, and net/http falls back
// to ReadTimeout for a server without an IdleTimeout, so a server that
// lost its IdleTimeout passed it (an idle connection then stays for
// readTimeout's 30 s, not idleTimeout's 2 minutes).
func TestReview31IdleTimeoutIsItsOwn(t *testing.T) {
	oldRead, oldIdle := readTimeout, idleTimeout
	readTimeout, idleTimeout = time.Hour, 100*time.Millisecond
	t.Cleanup(func() { readTimeout, idleTimeout = oldRead, oldIdle })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := startRun(ctx, t, io.Discard)
	defer func() { require.NoError(t, stop()) }()

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
