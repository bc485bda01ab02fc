package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/runneltest"
)

// A produce the broker refused (a policy's refusal: nothing appended,
// which the producer's doc says such an error alone means) is answered
// "was not placed", and its key forgotten: it was answered "may or may
// not have been placed", as every error but the order's ctx's was, and
// its key then kept for the life of the process, refusing any other
// order under it (422), and a retry answered 202 — the order's place
// not known — where it is known to be the retry's own.
func TestReview32RefusedOrderNotPlaced(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 2})
	svc := &Service{producer: runneltest.NewProducer(t, f), logger: slog.New(slog.DiscardHandler),
		orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	ts := httptest.NewServer(svc.Handler())
	defer ts.Close()
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	for _, key := range []string{"", "k-1"} {
		req, err := http.NewRequest(http.MethodPost, ts.URL+"/orders", strings.NewReader(ada))
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "key %q", key)
		require.Contains(t, string(body), "was not placed", "key %q", key)
		require.NotContains(t, string(body), "may or may not", "key %q", key)
		require.NotContains(t, string(body), api.ErrPolicyViolation.Error(), "key %q", key)
	}
	resp, st := postKey(t, ts.URL, "k-1", `{"customer":"bob","items":["pen"],"amount_cents":5}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "nothing holds the key")
	require.Equal(t, "bob", st.Order.Customer)
}
