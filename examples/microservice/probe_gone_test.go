package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProbeGoneAwayLogsNothing: a probe whose request ended before the
// look at the broker (the orchestrator's timeout, a client that went
// away) is answered as one the broker did not answer, but logs nothing:
// it tells nothing of the broker, and a healthy service would log
// "unhealthy" and "healthy again" for each such probe. Both probes share
// the check.
func TestProbeGoneAwayLogsNothing(t *testing.T) {
	_, svc, logged := newMemService(t)
	h := svc.Handler()

	gone, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		path string
		code int
		text string
	}{
		{"/healthz", http.StatusServiceUnavailable, "the event log does not answer\n"},
		{"/livez", http.StatusOK, "ok (not ready: the event log does not answer)\n"},
	} {
		code, text := probe(gone, h, tc.path)
		require.Equal(t, tc.code, code, tc.path)
		require.Equal(t, tc.text, text, tc.path)
	}
	code, text := probe(t.Context(), h, "/healthz")
	require.Equal(t, http.StatusOK, code, text)
	require.Empty(t, logged.String())
}
