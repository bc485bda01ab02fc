package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// TestReview39KeyReusedForAnOrderThatDiffersInOneField: an
// Idempotency-Key names one order; a request with the key and an order
// that differs from it in any one field — the customer, the items, the
// amount — is refused (422), whether a handler has seen the order or
// only this process placed it, and places nothing.
func TestReview39KeyReusedForAnOrderThatDiffersInOneField(t *testing.T) {
	const order = `{"customer":"ada","items":["book"],"amount_cents":1299}`
	others := []string{
		`{"customer":"bob","items":["book"],"amount_cents":1299}`,
		`{"customer":"ada","items":["pen"],"amount_cents":1299}`,
		`{"customer":"ada","items":["book","book"],"amount_cents":1299}`,
		`{"customer":"ada","items":["book"],"amount_cents":1300}`,
	}
	t.Run("seen by the handlers", func(t *testing.T) {
		b := runneltest.NewBroker(t)
		_, srv := newService(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, st := postKey(t, srv.URL, "k-1", order)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		waitDone(ctx, t, srv.URL, st.Order.ID)
		for _, other := range others {
			resp, _ := postKey(t, srv.URL, "k-1", other)
			require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, other)
		}
		require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 1)
	})
	t.Run("placed by this process", func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
		srv := newServiceWithoutHandlers(t, runneltest.NewProducer(t, b))
		resp, _ := postKey(t, srv.URL, "k-1", order)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		for _, other := range others {
			resp, _ := postKey(t, srv.URL, "k-1", other)
			require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, other)
		}
		require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 1)
	})
}

// TestReview39RetryAfterMaybeWrittenHoldsTheKey: after an attempt that may
// have written the order, a retry with its key places it again, and
// while it does, a third request with the key is refused as a
// concurrent one (claimBusy: 409), rather than place it a third time.
func TestReview39RetryAfterMaybeWrittenHoldsTheKey(t *testing.T) {
	svc := &Service{orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	ada := Order{ID: "order-k-1", Customer: "ada", Items: []string{"book"}, AmountCents: 1299}
	_, c := svc.claim(ada)
	require.Equal(t, claimPlace, c)
	svc.placed(ada, nil, true) // may have been written
	_, c = svc.claim(ada)
	require.Equal(t, claimPlace, c, "a retry places it again")
	_, c = svc.claim(ada)
	require.Equal(t, claimBusy, c, "a request while the retry places it")
}

// TestReview39PlacedAnswersFromTheHandlersEventElsewhere: a request that
// wrote its order's event, which a handler saw another event of first
// (at another partition, at the same offset), is answered with the
// handlers' status (200): its own event is the duplicate they skip.
func TestReview39PlacedAnswersFromTheHandlersEventElsewhere(t *testing.T) {
	svc := &Service{orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	ada := Order{ID: "order-k-1", Customer: "ada", Items: []string{"book"}, AmountCents: 1299}
	seen := &Status{Order: ada, Partition: 0, Offset: 5, Invoice: "INV-0-5"}
	svc.orders[ada.ID] = seen
	st, code := svc.placed(ada, &Status{Order: ada, Partition: 1, Offset: 5}, false)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, *seen, st)
	st, code = svc.placed(ada, &Status{Order: ada, Partition: 0, Offset: 5}, false)
	require.Equal(t, http.StatusCreated, code, "its own event, the one the handlers act on")
	require.Equal(t, Status{Order: ada, Partition: 0, Offset: 5}, st)
}
