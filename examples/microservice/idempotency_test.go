package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

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
func TestPlacedOrderFoundBeforeHandlersSawIt(t *testing.T) {
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
func TestEmptyIdempotencyKeyRefused(t *testing.T) {
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
func TestKeyForgottenWhenNotPlaced(t *testing.T) {
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

// The other side of TestKeyForgottenWhenNotPlaced: a retry that
// is certainly not placed keeps the key when an earlier attempt may have
// written the order, so that the key still refuses another order (which
// the handlers would skip as that order's duplicate:
// TestKeyReusedBeforeHandlersSawIt).
func TestKeyKeptWhileAnAttemptMayHaveWrittenIt(t *testing.T) {
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

// A key reused for another order before the handlers have seen the first
// is refused too: answered 201 and written, the second order would be
// skipped by the handlers as a duplicate of the first — placed for the
// client, never billed nor shipped. The service here runs no handlers,
// standing for handlers that have not caught up yet.
func TestKeyReusedBeforeHandlersSawIt(t *testing.T) {
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
	require.Equal(t, http.StatusOK, resp.StatusCode, "a retry of the same order is answered from the first (TestRetryAfterPlacedAnsweredWithItsResult)")

	recs := runneltest.ConsumeAll(t, b, OrdersTopic)
	require.Len(t, recs, 1)
	require.Equal(t, "ada", string(recs[0].Key), "only the first order was written")
}

// gateHandler is a slog.Handler that holds each "bad event" log (a
// handler meeting a poison event) until open is closed: it stands for
// handlers that have not caught up yet.
type gateHandler struct {
	slog.Handler
	open <-chan struct{}
}

func (gateHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h gateHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "bad event" {
		<-h.open
	}
	return nil
}

// A service started on a topic that already holds orders (a restart
// with -dir: another process wrote them) rebuilds their state before it
// takes any request. Until its handlers have read what the topic held,
// an order placed earlier under an Idempotency-Key was unknown to it: the
// key reused for another order was answered 201 and written, and the
// handlers then skipped that order as the first one's duplicate — placed
// for the client, never billed nor shipped; and GET of the earlier order
// answered 404. Here each partition starts with a poison event, whose
// log line holds the handlers until the test lets them go.
func TestRestartedServiceKnowsEarlierKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
		for p := range 4 {
			runneltest.Produce(t, b, OrdersTopic, &record.Record{Partition: int32(p), Value: []byte("not json")})
		}
		v, err := json.Marshal(Order{ID: "order-k1", Customer: "ada", Items: []string{"book"}, AmountCents: 1299})
		require.NoError(t, err)
		runneltest.Produce(t, b, OrdersTopic, &record.Record{Key: []byte("ada"), Value: v})

		open := make(chan struct{})
		var once sync.Once
		var svc *Service
		t.Cleanup(func() {
			once.Do(func() { close(open) })
			if svc != nil {
				require.NoError(t, svc.Close())
			}
		})
		started := make(chan *Service, 1)
		go func() {
			s, err := NewService(t.Context(), b, slog.New(gateHandler{slog.DiscardHandler, open}))
			require.NoError(t, err)
			started <- s
		}()
		synctest.Wait() // the handlers are held at their first event
		select {
		case svc = <-started: // started before the handlers caught up
		default:
			once.Do(func() { close(open) })
			svc = <-started
		}

		get := httptest.NewRecorder()
		svc.Handler().ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/orders/order-k1", nil))
		require.Equal(t, http.StatusOK, get.Code, "the earlier order, right after the start")

		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader(`{"customer":"bob","items":["pen"],"amount_cents":5}`))
		req.Header.Set("Idempotency-Key", "k1")
		w := httptest.NewRecorder()
		svc.Handler().ServeHTTP(w, req)
		require.Equal(t, http.StatusUnprocessableEntity, w.Code, "k1 names an earlier order: %s", w.Body)
	})
}

// The map of orders this process is placing (or placed) holds an order only
// until a handler has seen it: from then on claim answers from the
// order's status, and the entry was dead weight, one copy of every keyed
// order kept for the life of the process.
func TestKeyedOrdersForgottenOnceSeen(t *testing.T) {
	b := runneltest.NewBroker(t)
	svc, srv := newService(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 3 {
		resp, st := postKey(t, srv.URL, fmt.Sprintf("k-%d", i), `{"customer":"ada","items":["book"],"amount_cents":1299}`)
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		waitDone(ctx, t, srv.URL, st.Order.ID)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	require.Empty(t, svc.pending)
	require.Len(t, svc.orders, 3)
}

// The Idempotency-Key draft makes the header a Structured Field String:
// a client that follows it sends the key quoted,
// Idempotency-Key: "k-1". That is the key k-1, as the unquoted form
// many APIs take is; it was refused with 400 (quotes are not among the
// key's characters).
func TestQuotedIdempotencyKey(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`
	resp, st := postKey(t, srv.URL, `"k-1"`, ada)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "order-k-1", st.Order.ID)
	waitDone(ctx, t, srv.URL, st.Order.ID)
	resp, again := postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusOK, resp.StatusCode, "the same key, unquoted")
	require.Equal(t, st.Offset, again.Offset)
	for _, bad := range []string{`"k-1`, `k-1"`, `""`, `"a b"`, `"k\"1"`} {
		resp, _ := postKey(t, srv.URL, bad, ada)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
	}
}

// Two Idempotency-Key field lines are, as RFC 9110 combines them, one
// list "k-1, k-2", which the service refuses (400), and the draft says a
// client must not send; the service took the first line's key and placed
// the order under it.
func TestTwoIdempotencyKeysRefused(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(`{"customer":"ada","items":["book"],"amount_cents":1299}`))
	require.NoError(t, err)
	req.Header.Add("Idempotency-Key", "k-1")
	req.Header.Add("Idempotency-Key", "k-2")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Empty(t, runneltest.ConsumeAll(t, b, OrdersTopic), "nothing placed")
}

// TestKeyReusedForAnOrderThatDiffersInOneField: an
// Idempotency-Key names one order; a request with the key and an order
// that differs from it in any one field — the customer, the items, the
// amount — is refused (422), whether a handler has seen the order or
// only this process placed it, and places nothing.
func TestKeyReusedForAnOrderThatDiffersInOneField(t *testing.T) {
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

// TestPlacedAnswersFromTheHandlersEventElsewhere: a request that
// wrote its order's event, which a handler saw another event of first
// (at another partition, at the same offset), is answered with the
// handlers' status (200): its own event is the duplicate they skip.
func TestPlacedAnswersFromTheHandlersEventElsewhere(t *testing.T) {
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

// An order placed without an Idempotency-Key gets an ID that no key can
// name: when its outcome is unknown (its 503 names its ID, and the
// service keeps nothing of it), a keyed order whose key is the random
// part of that ID is its own order, answered 201 under its own ID and
// acted on by the handlers. The two shared "order-" + 12 characters of
// A-Z and 2-7, which a key may hold: the keyed order was answered 201
// under the first one's ID, and the handlers skipped it as its duplicate.
func TestUnkeyedOrderIDsAreNoKeysToName(t *testing.T) {
	b, _, svc, url := losingFirstAnswer(t)
	code, body := postText(t, url, "", adaOrder) // written, its answer lost
	require.Equal(t, http.StatusServiceUnavailable, code)
	m := regexp.MustCompile(`as (order[.-]([A-Z2-7]{12}))`).FindStringSubmatch(body)
	require.NotNil(t, m, body)
	_, ok := idempotencyKeyOf(http.Header{"Idempotency-Key": {m[1]}})
	require.False(t, ok, "the ID %s as a key", m[1])

	bob := `{"customer":"bob","items":["pen"],"amount_cents":5}`
	resp, placed := postKey(t, url, m[2], bob)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.Equal(t, "order-"+m[2], placed.Order.ID)
	handleAll(t, svc, b)
	for id, customer := range map[string]string{m[1]: "ada", placed.Order.ID: "bob"} {
		got, st := getStatus(t, svc, id)
		require.Equal(t, http.StatusOK, got, id)
		require.Equal(t, customer, st.Order.Customer, id)
		require.NotEmpty(t, st.Invoice, "%s: billed", id)
		require.NotEmpty(t, st.Shipment, "%s: shipped", id)
	}
}
