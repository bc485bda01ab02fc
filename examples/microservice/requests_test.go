package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A body that holds an order and then more (a second order, junk) is
// not an order: placing the first and answering 201 would silently drop
// the rest.
func TestTrailingDataRefused(t *testing.T) {
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
func TestBodyTooLarge(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	body := `{"customer":"c","items":["` + strings.Repeat("x", 64<<10) + `"],"amount_cents":1}`
	resp, _ := post(t, srv.URL, body)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
}

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
func TestFailureAnswerHoldsNoInternalText(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrBrokerClosed, Count: runneltest.Unlimited})
	var logged syncBuffer
	svc := &Service{producer: runneltest.NewProducer(t, f), logger: slog.New(slog.NewTextHandler(&logged, nil)),
		orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	for _, key := range []string{"", "k-1"} {
		code, body := postText(t, srv.URL, key, adaOrder)
		require.Equal(t, http.StatusServiceUnavailable, code, "key %q", key)
		require.Contains(t, body, "may or may not have been placed", "key %q", key)
		require.NotContains(t, body, api.ErrBrokerClosed.Error(), "key %q", key)
		require.NotContains(t, body, "orders-", "key %q: no partition's name", key)
	}
	require.Contains(t, logged.String(), api.ErrBrokerClosed.Error(), "the cause is logged")
}

// An order whose body names its own "id" is refused, as a body with any
// other field the service does not take is: the service sets the ID
// (from the Idempotency-Key, or at random), so a client's "id" was
// dropped without a word, and a client counting on it to name (and
// deduplicate) its order placed it under another ID each time.
func TestClientIDRefused(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	for _, key := range []string{"", "k-1"} {
		resp, _ := postKey(t, srv.URL, key, `{"id":"mine","customer":"c","items":["x"],"amount_cents":1}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "key %q", key)
	}
	require.Empty(t, runneltest.ConsumeAll(t, b, OrdersTopic), "nothing placed")
}
