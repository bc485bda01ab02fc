package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
)

// syncBuffer is a bytes.Buffer that a logger and a test may share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A produce that fails is answered with a stable message of the
// service's own, its cause logged: the answer held the producer's error
// text (a broker's refusal, a log's write error with its file's path),
// which tells a client nothing it can act on and tells it how the
// service is built. The answer still says the order may or may not have
// been placed, and, for an order without a key, as which ID.
func TestReview32FailureAnswerHoldsNoInternalText(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrBrokerClosed, Count: runneltest.Unlimited})
	var logged syncBuffer
	svc := &Service{producer: runneltest.NewProducer(t, f), logger: slog.New(slog.NewTextHandler(&logged, nil)),
		orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	for _, key := range []string{"", "k-1"} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(ada))
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
		require.Contains(t, string(body), "may or may not have been placed", "key %q", key)
		require.NotContains(t, string(body), api.ErrBrokerClosed.Error(), "key %q", key)
		require.NotContains(t, string(body), "orders-", "key %q: no partition's name", key)
	}
	require.Contains(t, logged.String(), api.ErrBrokerClosed.Error(), "the cause is logged")
}

// getStatus answers GET /orders/{id} from svc.
func getStatus(t *testing.T, svc *Service, id string) (int, Status) {
	t.Helper()
	w := httptest.NewRecorder()
	svc.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/orders/"+id, nil))
	var st Status
	if w.Code == http.StatusOK {
		require.NoError(t, json.NewDecoder(w.Body).Decode(&st))
	}
	return w.Code, st
}

// An order this process placed (201, with its Location) is found by GET
// at once, with where it was written, before a handler has seen it: GET
// answered 404 until then, while a retry of a keyed order was already
// answered 200 with its status — two answers about one order that
// disagreed. No invoice nor shipment yet: no handler has got to it.
func TestReview32PlacedOrderFoundBeforeHandlersSawIt(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	svc := &Service{producer: runneltest.NewProducer(t, b), logger: slog.New(slog.DiscardHandler),
		orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	for _, key := range []string{"k-1", ""} {
		resp, placed := postKey(t, srv.URL, key, ada)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		code, got := getStatus(t, svc, placed.Order.ID)
		require.Equal(t, http.StatusOK, code, "key %q", key)
		require.Equal(t, placed, got, "key %q", key)
		require.Empty(t, got.Invoice)
		require.Empty(t, got.Shipment)
	}
	code, _ := getStatus(t, svc, "order-nope")
	require.Equal(t, http.StatusNotFound, code)
}

// An empty Idempotency-Key field is refused (400), as the empty quoted
// key "" is: a client whose key came out empty (a bug of its own) had its
// order placed without a key, and each of its retries placed it again.
// The draft makes the field a Structured Field String, which an empty
// field is not.
func TestReview32EmptyIdempotencyKeyRefused(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"customer":"ada","items":["book"],"amount_cents":1299}`))
	require.NoError(t, err)
	req.Header.Set("Idempotency-Key", "")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Empty(t, runneltest.ConsumeAll(t, b, OrdersTopic), "nothing placed")
}

// A keyed order that was not placed (it waited unsent past placeTimeout:
// here the producer cannot learn the topic's partitions) is forgotten:
// its key stayed in the map of orders this process placed for the life
// of the process, as no handler would ever see the order and drop it.
// A retry then places it.
func TestReview32KeyForgottenWhenNotPlaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
		f := runneltest.NewFaults(t, b)
		held := f.Add(runneltest.Fault{Op: runneltest.OpPartitions, Action: runneltest.HoldRequest, Count: 1})
		p, err := producer.New(f, producer.Linger(0), producer.DeliveryTimeout(deliveryTimeout))
		require.NoError(t, err)
		t.Cleanup(func() { p.Close() })
		svc := &Service{producer: p, logger: slog.New(slog.DiscardHandler), orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
		post := func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"customer":"ada","items":["book"],"amount_cents":1299}`))
			req.Header.Set("Idempotency-Key", "k-1")
			w := httptest.NewRecorder()
			svc.Handler().ServeHTTP(w, req)
			return w
		}
		w := post()
		require.Equal(t, http.StatusServiceUnavailable, w.Code)
		require.Contains(t, w.Body.String(), "was not placed")
		svc.mu.Lock()
		require.Empty(t, svc.pending, "the key of an order not placed")
		svc.mu.Unlock()

		held.Remove()
		w = post()
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	})
}

// The other side of TestReview32KeyForgottenWhenNotPlaced: a retry that
// is certainly not placed keeps the key when an earlier attempt may have
// written the order, so that the key still refuses another order (which
// the handlers would skip as that order's duplicate:
// TestReview28KeyReusedBeforeHandlersSawIt).
func TestReview32KeyKeptWhileAnAttemptMayHaveWrittenIt(t *testing.T) {
	svc := &Service{orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	ada := Order{ID: "order-k-1", Customer: "ada", Items: []string{"book"}, AmountCents: 1299}
	bob := Order{ID: "order-k-1", Customer: "bob", Items: []string{"pen"}, AmountCents: 5}
	_, c := svc.claim(ada)
	require.Equal(t, claimPlace, c)
	svc.placed(ada, nil, true) // may have been written
	_, c = svc.claim(ada)
	require.Equal(t, claimPlace, c, "a retry places it again")
	svc.placed(ada, nil, false) // certainly not written, this time
	_, c = svc.claim(bob)
	require.Equal(t, claimOther, c, "the first attempt may have written ada's order")
}
