package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A service's Close is a shutdown, not a failure: its handlers' Records
// loops end with ctx's error (Records' doc), which they do not log as a
// consume error. An order placed before handled by both handlers first.
func TestReview41CloseLogsNoConsumeError(t *testing.T) {
	b := runneltest.NewBroker(t)
	var logged syncBuffer
	svc, err := NewService(context.Background(), b, slog.New(slog.NewTextHandler(&logged, nil)))
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	resp, st := post(t, srv.URL, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitDone(ctx, t, srv.URL, st.Order.ID)
	require.NoError(t, svc.Close())
	require.NotContains(t, logged.String(), "msg=consume", "a shutdown logged as a failure")
}
