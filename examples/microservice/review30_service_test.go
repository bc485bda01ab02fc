package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
)

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
func TestReview30RestartedServiceKnowsEarlierKeys(t *testing.T) {
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
func TestReview30KeyedOrdersForgottenOnceSeen(t *testing.T) {
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

// A topic whose records were all deleted (DeleteRecords, or the 7-day
// retention of a topic made before it kept its records for ever) has
// nothing for the handlers to read up to: NewService starts at once
// rather than wait, with no record to come, until ctx ends.
func TestReview30StartsOnATopicWhoseRecordsAreGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
		v, err := json.Marshal(Order{ID: "order-k1", Customer: "ada", Items: []string{"book"}, AmountCents: 1299})
		require.NoError(t, err)
		r := &record.Record{Key: []byte("ada"), Value: v}
		runneltest.Produce(t, b, OrdersTopic, r)
		_, err = b.DeleteRecords(t.Context(), OrdersTopic, r.Partition, r.Offset+1)
		require.NoError(t, err)

		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		svc, err := NewService(ctx, b, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		require.NoError(t, svc.Close())
	})
}

// An order whose body names its own "id" is refused, as a body with any
// other field the service does not take is: the service sets the ID
// (from the Idempotency-Key, or at random), so a client's "id" was
// dropped without a word, and a client counting on it to name (and
// deduplicate) its order placed it under another ID each time.
func TestReview30ClientIDRefused(t *testing.T) {
	b := runneltest.NewBroker(t)
	_, srv := newService(t, b)
	for _, key := range []string{"", "k-1"} {
		resp, _ := postKey(t, srv.URL, key, `{"id":"mine","customer":"c","items":["x"],"amount_cents":1}`)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "key %q", key)
	}
	require.Empty(t, runneltest.ConsumeAll(t, b, OrdersTopic), "nothing placed")
}

// The Idempotency-Key draft makes the header a Structured Field String:
// a client that follows it sends the key quoted,
// Idempotency-Key: "k-1". That is the key k-1, as the unquoted form
// many APIs take is; it was refused with 400 (quotes are not among the
// key's characters).
func TestReview30QuotedIdempotencyKey(t *testing.T) {
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
func TestReview30TwoIdempotencyKeysRefused(t *testing.T) {
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

// newServiceWithoutHandlers is a Service whose handlers have not caught
// up (it runs none), producing with p.
func newServiceWithoutHandlers(t *testing.T, p *producer.Producer) *httptest.Server {
	svc := &Service{producer: p, logger: slog.New(slog.DiscardHandler), orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// A retry after the order was placed (answered 201), before the handlers
// have seen it, is answered with the result of that request, as the
// Idempotency-Key draft says: the order's place, not a second event's.
// It was written again and answered 201 with its own offset, which named
// an event the handlers skip, and GET then gave another.
func TestReview30RetryAfterPlacedAnsweredWithItsResult(t *testing.T) {
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
func TestReview30RetryWhilePlacingConflicts(t *testing.T) {
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
		second = <-secondCode
	}
	held.Remove()
	return <-firstCode, second
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

// A broker Close that fails at shutdown (here the partitions'
// directories are gone, so the logs cannot be closed cleanly) fails the
// run, so that the service exits 1 and says why: the error was dropped,
// and a shutdown that left the logs to recover exited 0.
func TestReview30CloseErrorFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr, stop := startRun(ctx, t, io.Discard, "-dir", dir)
	url := "http://" + addr
	resp, st := post(t, url, `{"customer":"ada","items":["book"],"amount_cents":1299}`)
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	waitDone(ctx, t, url, st.Order.ID)
	for p := range 4 {
		path := filepath.Join(dir, OrdersTopic+"-"+strconv.Itoa(p))
		if err := os.RemoveAll(path); err != nil { // Windows: its files are open
			_ = stop()
			t.Skip("the partition's directory cannot be removed while its files are open:", err)
		}
	}
	require.ErrorContains(t, stop(), "close broker")
}

// A retry after a request whose placing failed places the order: the
// failed request gives its key up (it would otherwise answer 409 for
// ever).
func TestReview30RetryAfterFailurePlaces(t *testing.T) {
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
func TestReview30MaybePlacedAnswerNamesTheOrder(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(OrdersTopic, 4))
	f := runneltest.NewFaults(t, b)
	// Appended, then the broker failed (closing, its fsync failing): its
	// answer lost. (A refusal's error would say nothing was appended,
	// which the service now believes: TestReview32RefusedOrderNotPlaced.)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Action: runneltest.LoseResponse, Err: api.ErrBrokerClosed, Count: runneltest.Unlimited})
	srv := newServiceWithoutHandlers(t, runneltest.NewProducer(t, f))
	ada := `{"customer":"ada","items":["book"],"amount_cents":1299}`

	req, err := http.NewRequest(http.MethodPost, srv.URL+"/orders", strings.NewReader(ada))
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	recs := runneltest.ConsumeAll(t, b, OrdersTopic)
	require.Len(t, recs, 1, "written, its answer lost")
	var o Order
	require.NoError(t, json.Unmarshal(recs[0].Value, &o))
	require.Contains(t, string(body), o.ID, "the ID it may have been placed as")
	require.NotContains(t, string(body), "retry with an Idempotency-Key to be sure")

	resp, _ = postKey(t, srv.URL, "k-1", ada)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}
