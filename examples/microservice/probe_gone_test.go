package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/runnel/runnel"
	"github.com/stretchr/testify/require"
)

// TestProbeGoneAwayLogsNothing: a probe whose request ended before the
// look at the broker (the orchestrator's timeout, a client that went
// away) is answered as one the broker did not answer, but logs nothing:
// it tells nothing of the broker, and a healthy service would log
// "unhealthy" and "healthy again" for each such probe. Both probes share
// the check.
func TestProbeGoneAwayLogsNothing(t *testing.T) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	var logged syncBuffer
	svc, err := NewService(t.Context(), b, slog.New(slog.NewTextHandler(&logged, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Close()) })
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
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil).WithContext(gone))
		require.Equal(t, tc.code, w.Code, tc.path)
		require.Equal(t, tc.text, w.Body.String(), tc.path)
	}
	code, text := getHealth(t, h)
	require.Equal(t, http.StatusOK, code, text)
	require.Empty(t, logged.String())
}
