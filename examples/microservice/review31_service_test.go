package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
)

// A retry after a failed request places the order again, and holds its
// key while it does: a second retry meanwhile is refused with 409, as
// while the first request placed it, not written a third time.
func TestReview31RetryAfterFailureHoldsTheKey(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 1})
	p := runneltest.NewProducer(t, f)
	srv := newServiceWithoutHandlers(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	resp, _ := postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)

	held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
	retry, again := postTwiceWhileHeld(ctx, t, srv.URL, p, held, "k-1", ada)
	require.Equal(t, http.StatusConflict, again)
	require.Equal(t, http.StatusCreated, retry)
	require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 1, "written once")
}

// An order sent to the broker, whose answer does not come before the
// producer's delivery timeout, may have been written: the answer says so
// (503 "may or may not"), though the order's own ctx (placeTimeout) ended
// before; only an error that is that ctx's means not written.
func TestReview31DeliveryTimeoutAfterPlaceTimeoutMayBePlaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
		f := runneltest.NewFaults(t, b)
		held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
		p, err := producer.New(f, producer.Linger(0), producer.DeliveryTimeout(deliveryTimeout))
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
		svc := &Service{producer: p, logger: slog.New(slog.DiscardHandler), orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"customer":"ada","items":["book"],"amount_cents":1299}`))
		req.Header.Set("Idempotency-Key", "k-1")
		w := httptest.NewRecorder()
		svc.Handler().ServeHTTP(w, req)
		held.Remove()
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		require.Contains(t, w.Body.String(), "may or may not have been placed")
	})
}
