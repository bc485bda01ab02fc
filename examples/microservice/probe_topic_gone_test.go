package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/runnel/runnel"
	"github.com/stretchr/testify/require"
)

// TestProbesTellTheOrdersTopicGone: with the orders topic deleted under
// the service, both probes fail and say so: /healthz as it cannot take
// orders, /livez as only a restart mends it (NewService creates the
// topic again). Until 2026-12-08 they said "the event log does not
// answer", and /livez answered 200.
func TestProbesTellTheOrdersTopicGone(t *testing.T) {
	b, err := runnel.Open(runnel.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	var logged syncBuffer
	svc, err := NewService(t.Context(), b, slog.New(slog.NewTextHandler(&logged, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, svc.Close()) })
	h := svc.Handler()

	require.NoError(t, b.DeleteTopic(t.Context(), OrdersTopic))
	for _, tc := range []struct {
		path string
		text string
	}{
		{"/healthz", "the orders topic is gone\n"},
		{"/livez", "the orders topic is gone: a restart creates it again\n"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequestWithContext(t.Context(), http.MethodGet, tc.path, nil))
		require.Equal(t, http.StatusServiceUnavailable, w.Code, tc.path)
		require.Equal(t, tc.text, w.Body.String(), tc.path)
	}
	require.Contains(t, logged.String(), "the orders topic is gone", "the problem is logged once it begins")
}
