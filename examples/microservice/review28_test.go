package main

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/runneltest"
)

// A body that holds an order and then more (a second order, junk) is
// not an order: placing the first and answering 201 would silently drop
// the rest.
func TestReview28TrailingDataRefused(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	for _, body := range []string{
		`{"customer":"c","items":["x"],"amount_cents":1}{"customer":"d","items":["y"],"amount_cents":2}`,
		`{"customer":"c","items":["x"],"amount_cents":1} junk`,
	} {
		resp, _ := post(t, srv.URL, body)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	}
	require.Empty(t, runneltest.ConsumeAll(t, b, OrdersTopic), "nothing placed")
}

// A body over the limit is 413 Content Too Large, not 400.
func TestReview28BodyTooLarge(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	body := `{"customer":"c","items":["` + strings.Repeat("x", 64<<10) + `"],"amount_cents":1}`
	resp, _ := post(t, srv.URL, body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

// A key reused for another order before the handlers have seen the first
// is refused too: answered 201 and written, the second order would be
// skipped by the handlers as a duplicate of the first — placed for the
// client, never billed nor shipped. The service here runs no handlers,
// standing for handlers that have not caught up yet.
func TestReview28KeyReusedBeforeHandlersSawIt(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	svc := &Service{b: b, producer: runneltest.NewProducer(t, b), logger: slog.New(slog.DiscardHandler),
		orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()

	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	resp, _ := postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, _ = postKey(t, srv.URL, "k-1", `{"customer":"bob","items":["pen"],"amount_cents":5}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "a key reused for another order")
	resp, _ = postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusOK, resp.StatusCode, "a retry of the same order is answered from the first (TestReview30RetryAfterPlacedAnsweredWithItsResult)")

	recs := runneltest.ConsumeAll(t, b, OrdersTopic)
	require.Len(t, recs, 1)
	require.Equal(t, "ada", string(recs[0].Key), "only the first order was written")
}
