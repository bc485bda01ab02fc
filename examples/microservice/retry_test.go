package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// handleAll hands every event of the orders topic to svc's billing and
// shipping, as their consumers would (in order, per partition).
func handleAll(t *testing.T, svc *Service, b *runnel.Broker) {
	t.Helper()
	for _, r := range runneltest.ConsumeAll(t, b, OrdersTopic) {
		var o Order
		require.NoError(t, json.Unmarshal(r.Value, &o))
		svc.bill(r, o)
		svc.ship(r, o)
	}
}

// adaOrder is the order the tests of a failed or retried placing post
// (the retry tests under the key k-1).
const adaOrder = `{"customer":"ada","items":["book"],"amount_cents":1299}`

// firstAnswerLost starts a service on a broker whose first produce is
// written but its answer lost (as when the broker appended it and then
// failed), and places adaOrder under k-1 once: the request fails as "may
// or may not have been placed" (503), the order's event written. It
// returns the broker, the faults over it (to add rules for the next
// produces), the service, and its server's URL.
func firstAnswerLost(t *testing.T) (*runnel.Broker, *runneltest.Faults, *Service, string) {
	t.Helper()
	b, f, svc, url := losingFirstAnswer(t)
	resp, _ := postKey(t, url, "k-1", adaOrder)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	return b, f, svc, url
}

// losingFirstAnswer is firstAnswerLost before its order: the service, its
// first produce to be written and its answer lost.
func losingFirstAnswer(t *testing.T) (*runnel.Broker, *runneltest.Faults, *Service, string) {
	t.Helper()
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrBrokerClosed, Count: 1})
	svc := &Service{producer: runneltest.NewProducer(t, f), logger: slog.New(slog.DiscardHandler),
		orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	ts := httptest.NewServer(svc.Handler())
	t.Cleanup(ts.Close)
	return b, f, svc, ts.URL
}

// A retry with the same key after a request whose order may have been
// written, before the handlers have seen it, must not answer 201 with
// its own event's offset: when the first attempt was written, the
// handlers act on that one (the first of the order's ID) and skip the
// retry's as a duplicate, so the 201 named an event no handler acts on,
// and GET named it too until the handlers got to the order, then the
// other.
func TestRetryAfterMaybeWrittenNamesTheHandledEvent(t *testing.T) {
	b, _, svc, srv := firstAnswerLost(t)
	resp, retry := postKey(t, srv, "k-1", adaOrder)
	require.Contains(t, []int{http.StatusCreated, http.StatusOK, http.StatusAccepted}, resp.StatusCode)
	code, before := getStatus(t, svc, "order-k-1")

	handleAll(t, svc, b)
	code2, handled := getStatus(t, svc, "order-k-1")
	require.Equal(t, http.StatusOK, code2)
	require.NotEmpty(t, handled.Invoice)
	if resp.StatusCode != http.StatusAccepted { // an answer that names an event names the handled one
		require.Equal(t, handled.Partition, retry.Partition, "the retry's answer")
		require.Equal(t, handled.Offset, retry.Offset, "the retry's answer")
	}
	if code == http.StatusOK {
		require.Equal(t, handled.Partition, before.Partition, "GET before the handlers")
		require.Equal(t, handled.Offset, before.Offset, "GET before the handlers")
	}
	require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 2, "the first attempt's event and the retry's")
}

// What the retry of TestRetryAfterMaybeWrittenNamesTheHandledEvent
// is answered until the handlers see the order, and a retry of it: 202,
// placed, with its Location, and nothing written again.
func TestRetryAfterMaybeWrittenAccepted(t *testing.T) {
	b, _, svc, srv := firstAnswerLost(t)
	var resp *http.Response
	for range 2 {
		resp, _ = postKey(t, srv, "k-1", adaOrder)
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		require.Equal(t, "/orders/order-k-1", resp.Header.Get("Location"))
		code, _ := getStatus(t, svc, "order-k-1")
		require.Equal(t, http.StatusNotFound, code)
	}
	resp, _ = postKey(t, srv, "k-1", `{"customer":"bob","items":["pen"],"amount_cents":5}`)
	require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "the key still names ada's order")
	require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 2, "written twice at most")
	handleAll(t, svc, b)
	resp, st := postKey(t, srv, "k-1", adaOrder)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(0), st.Offset, "the first event, which the handlers act on")
}

// The same retry, with the handlers getting to the first attempt's event
// while the retry is writing its own: the retry was answered 201 with its
// own event, which the handlers had already decided to skip; the answer
// is the order's, as the handlers found it (200: placed by an earlier
// request).
func TestRetryRacingTheHandlersNamesTheHandledEvent(t *testing.T) {
	b, f, svc, srv := firstAnswerLost(t)

	held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
	type answer struct {
		code int
		st   Status
	}
	answered := make(chan answer, 1)
	go func() {
		resp, st := postKey(t, srv, "k-1", adaOrder)
		answered <- answer{resp.StatusCode, st}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), testkit.HangGuard)
	defer cancel()
	require.NoError(t, held.Wait(ctx, 1))
	handleAll(t, svc, b) // the first attempt's event: the order's
	held.Remove()
	got := testkit.Await(t, answered, "the racing POST's answer")
	_, handled := getStatus(t, svc, "order-k-1")
	require.Equal(t, int64(0), handled.Offset)
	require.Equal(t, http.StatusOK, got.code, "placed by the first request")
	require.Equal(t, handled.Partition, got.st.Partition)
	require.Equal(t, handled.Offset, got.st.Offset)
}

// A produce the broker refused (a policy's refusal: nothing appended,
// which the producer's doc says such an error alone means) is answered
// "was not placed", and its key forgotten: it was answered "may or may
// not have been placed", as every error but the order's ctx's was, and
// its key then kept for the life of the process, refusing any other
// order under it (422), and a retry answered 202 — the order's place
// not known — where it is known to be the retry's own.
func TestRefusedOrderNotPlaced(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 2})
	svc := &Service{producer: runneltest.NewProducer(t, f), logger: slog.New(slog.DiscardHandler),
		orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	ts := httptest.NewServer(svc.Handler())
	defer ts.Close()
	for _, key := range []string{"", "k-1"} {
		code, body := postText(t, ts.URL, key, adaOrder)
		require.Equal(t, http.StatusServiceUnavailable, code, "key %q", key)
		require.Contains(t, body, "was not placed", "key %q", key)
		require.NotContains(t, body, "may or may not", "key %q", key)
		require.NotContains(t, body, api.ErrPolicyViolation.Error(), "key %q", key)
	}
	resp, st := postKey(t, ts.URL, "k-1", `{"customer":"bob","items":["pen"],"amount_cents":5}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "nothing holds the key")
	require.Equal(t, "bob", st.Order.Customer)
}

// A retry whose own write fails while the handlers have seen the order
// (the first attempt's event) is answered with the order, placed: it was
// answered 503 "may or may not have been placed" about an order the
// service knew was placed, and where.
func TestFailedRetryOfAHandledOrderAnsweredPlaced(t *testing.T) {
	b, f, svc, srv := firstAnswerLost(t)

	// The retry's write: the handlers get to the first event meanwhile,
	// and the write fails, maybe written.
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrBrokerClosed, Count: 1,
		Match: func(runneltest.Request) bool { handleAll(t, svc, b); return true }})
	resp, st := postKey(t, srv, "k-1", adaOrder)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, int64(0), st.Offset)
	require.NotEmpty(t, st.Invoice)
}

// A retry after the order was placed (answered 201), before the handlers
// have seen it, is answered with the result of that request, as the
// Idempotency-Key draft says: the order's place, not a second event's.
// It was written again and answered 201 with its own offset, which named
// an event the handlers skip, and GET then gave another.
func TestRetryAfterPlacedAnsweredWithItsResult(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	srv := newServiceWithoutHandlers(t, runneltest.NewProducer(t, b))
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	resp, first := postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	resp, again := postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "/orders/order-k-1", resp.Header.Get("Location"))
	require.Equal(t, first, again)
	require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 1, "written once")
}

// A retry while the first request with its key is still placing the
// order is refused with 409 Conflict, as the draft says a server must:
// it was written a second time (it waited behind the first in the
// producer, and was answered 201 with an offset of its own).
func TestRetryWhilePlacingConflicts(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	held := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.HoldRequest, Count: 1})
	p := runneltest.NewProducer(t, f)
	srv := newServiceWithoutHandlers(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	first, second := postTwiceWhileHeld(ctx, t, srv.URL, p, held, "k-1", `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusConflict, second)
	require.Equal(t, http.StatusCreated, first)
	require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 1, "written once")
}

// postTwiceWhileHeld posts body under key twice, the second while held
// holds the first's produce, and returns both status codes: the second's
// once it is answered, or once it is being written too (p buffers both),
// when held lets the first go.
func postTwiceWhileHeld(ctx context.Context, t *testing.T, url string, p *producer.Producer, held *runneltest.Rule, key, body string) (first, second int) {
	t.Helper()
	firstCode, secondCode := make(chan int, 1), make(chan int, 1)
	post := func(code chan<- int) {
		resp, _ := postKey(t, url, key, body)
		code <- resp.StatusCode
	}
	go post(firstCode)
	require.NoError(t, held.Wait(ctx, 1))
	go post(secondCode)
	select {
	case second = <-secondCode:
	case <-buffered(ctx, p, 2): // the second is being written too
		held.Remove()
		second = testkit.Await(t, secondCode, "the second POST's status")
	}
	held.Remove()
	return testkit.Await(t, firstCode, "the first POST's status"), second
}

// buffered is closed once p holds n records, or ctx ends.
func buffered(ctx context.Context, p *producer.Producer, n int64) <-chan struct{} {
	c := make(chan struct{})
	go func() {
		defer close(c)
		for p.BufferedRecords() < n && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
	}()
	return c
}

// A retry after a request whose placing failed places the order: the
// failed request gives its key up (it would otherwise answer 409 for
// ever).
func TestRetryAfterFailurePlaces(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: 1})
	srv := newServiceWithoutHandlers(t, runneltest.NewProducer(t, f))
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	resp, _ := postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	resp, st := postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "order-k-1", st.Order.ID)
	require.Len(t, runneltest.ConsumeAll(t, b, OrdersTopic), 1)
}

// When an order without an Idempotency-Key may have been placed, the
// answer names the ID it may have been placed as, for GET to find it, and
// does not tell the client that a retry with a key is safe: the retry
// gets another ID, which no handler links to the first, so it was placed
// twice when the first had been written. A keyed order's answer says a
// retry with its key is safe.
func TestMaybePlacedAnswerNamesTheOrder(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	// Appended, then the broker failed (closing, its fsync failing): its
	// answer lost. (A refusal's error would say nothing was appended,
	// which the service now believes: TestRefusedOrderNotPlaced.)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrBrokerClosed, Count: runneltest.Unlimited})
	srv := newServiceWithoutHandlers(t, runneltest.NewProducer(t, f))
	code, body := postText(t, srv.URL, "", adaOrder)
	require.Equal(t, http.StatusServiceUnavailable, code)
	recs := runneltest.ConsumeAll(t, b, OrdersTopic)
	require.Len(t, recs, 1, "written, its answer lost")
	var o Order
	require.NoError(t, json.Unmarshal(recs[0].Value, &o))
	require.Contains(t, body, o.ID, "the ID it may have been placed as")
	require.NotContains(t, body, "retry with an Idempotency-Key to be sure")

	resp, _ := postKey(t, srv.URL, "k-1", adaOrder)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// A retry after a failed request places the order again, and holds its
// key while it does: a second retry meanwhile is refused with 409, as
// while the first request placed it, not written a third time.
func TestRetryAfterFailureHoldsTheKey(t *testing.T) {
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
func TestDeliveryTimeoutAfterPlaceTimeoutMayBePlaced(t *testing.T) {
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

// TestRetryAfterMaybeWrittenHoldsTheKey: after an attempt that may
// have written the order, a retry with its key places it again, and
// while it does, a third request with the key is refused as a
// concurrent one (claimBusy: 409), rather than place it a third time.
func TestRetryAfterMaybeWrittenHoldsTheKey(t *testing.T) {
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
