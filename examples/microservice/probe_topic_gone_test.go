package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestProbesTellTheOrdersTopicGone: with the orders topic deleted under
// the service, both probes fail and say so: /healthz as it cannot take
// orders, /livez as only a restart mends it (NewService creates the
// topic again). Until 2026-12-08 they said "the event log does not
// answer", and /livez answered 200.
func TestProbesTellTheOrdersTopicGone(t *testing.T) {
	b, svc, logged := newMemService(t)
	h := svc.Handler()

	require.NoError(t, b.DeleteTopic(t.Context(), OrdersTopic))
	for _, tc := range []struct {
		path string
		text string
	}{
		{"/healthz", "the orders topic is gone\n"},
		{"/livez", "the orders topic is gone: a restart creates it again\n"},
	} {
		code, text := probe(t.Context(), h, tc.path)
		require.Equal(t, http.StatusServiceUnavailable, code, tc.path)
		require.Equal(t, tc.text, text, tc.path)
	}
	require.Contains(t, logged.String(), "the orders topic is gone", "the problem is logged once it begins")
}
