package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// OrdersTopic is the topic order events go to.
const OrdersTopic = "orders"

// How long placing an order may take. An order may wait this long in the
// producer's buffer before it is sent (placeTimeout: the buffer is full,
// say, with the broker slow), and once buffered it is written or fails
// within the producer's delivery timeout, which counts from there, not
// from the wait for space. So POST /orders answers within placeTimeout +
// deliveryTimeout.
const (
	placeTimeout    = 5 * time.Second
	deliveryTimeout = 15 * time.Second
)

// Order is what a client posts.
type Order struct {
	ID          string   `json:"id"` // set by the service: order-<Idempotency-Key>, or order.<random>
	Customer    string   `json:"customer"`
	Items       []string `json:"items"`
	AmountCents int64    `json:"amount_cents"`
}

// Status is what GET /orders/{id} answers: the order and how far the
// billing and shipping handlers have got with it.
type Status struct {
	Order     Order  `json:"order"`
	Offset    int64  `json:"offset"` // of the OrderPlaced event in its partition
	Partition int32  `json:"partition"`
	Invoice   string `json:"invoice,omitempty"`  // set by billing
	Shipment  string `json:"shipment,omitempty"` // set by shipping
}

// Service is an order service: HTTP in front, a broker inside. Each
// order is one OrderPlaced event, keyed by customer so one customer's
// orders stay in order; billing and shipping consume every event on their
// own consumers, in this process, and would run just the same in another
// process reading the same topic.
//
// Delivery is at least once: a produce that fails with an unknown outcome
// (the delivery timeout, say) may still have written its event, and a
// client that retries then places it a second time. So a client may name
// its order with an Idempotency-Key header, which becomes the order's ID,
// as the Idempotency-Key draft has it: a retry with the same key and
// order is answered (200) from the order already placed, seen by the
// handlers or placed by this process; one while this process is placing
// it is refused (409 Conflict), to retry once the first is answered; the
// same key with another order is refused (422). NewService has the
// handlers read the orders placed before it started, so that a restart
// forgets no key. A retry after a request that failed places the order
// again: the first may have written it too, and the handlers act on an
// ID's first event only, whatever duplicates follow. Such a retry's
// event is then not known to be the one they act on: it is answered with
// their status once they have seen the order (200 if they act on the
// first request's event), and until then 202 Accepted, the order placed
// and where not yet known, as are retries with its key. GET answers, as
// a retry does, from where this process placed an order until a handler
// has seen it (404 after a 202).
//
// A failure is answered with a message of the service's own (its cause
// goes to the log): 503, saying whether the order may have been placed
// — unless a handler has seen the order meanwhile (an earlier attempt's
// event, say), when the answer is its status (200).
type Service struct {
	b        *runnel.Broker
	producer *producer.Producer
	logger   *slog.Logger

	mu      sync.Mutex
	orders  map[string]*Status       // the orders a handler has seen
	pending map[string]*pendingOrder // orders this process placed, or is placing under an Idempotency-Key, until a handler sees them

	cancel context.CancelFunc
	wg     sync.WaitGroup

	healthMu  sync.Mutex
	unhealthy string // what the last probe (GET /healthz, GET /livez) found wrong, "" for nothing
}

// NewService creates the orders topic if it is not there yet, and starts
// the billing and shipping handlers. They first read the topic from its
// start, so a service restarted on a broker directory rebuilds its state
// from the events — all of them: the topic keeps its records for ever,
// where Kafka's default retention, 7 days, would forget older orders at
// the next restart. NewService returns once both handlers have read every
// event the topic held when it started, so that the service knows every
// order placed before (and every Idempotency-Key they were placed under)
// when it takes its first request; ctx ending first ends that wait, with
// ctx's error. Close stops the handlers.
func NewService(ctx context.Context, b *runnel.Broker, logger *slog.Logger) (*Service, error) {
	err := b.CreateTopic(ctx, OrdersTopic, log.TopicConfig{Partitions: 4, Config: log.Config{RetentionTime: -1}})
	if err != nil && !errors.Is(err, runnel.ErrTopicExists) {
		return nil, err
	}
	// What the topic holds now: the handlers read up to here before the
	// service answers anything. A partition with nothing to read (none
	// written, or all deleted) has no record to take them there.
	info, err := b.DescribeTopic(ctx, OrdersTopic)
	if err != nil {
		return nil, err
	}
	ends := make([]int64, len(info.Partitions))
	for _, p := range info.Partitions {
		if p.LogStartOffset < p.HighWatermark {
			ends[p.Partition] = p.HighWatermark
		}
	}
	p, err := producer.New(b, producer.Linger(0), producer.DeliveryTimeout(deliveryTimeout))
	if err != nil {
		return nil, err
	}
	s := &Service{b: b, producer: p, logger: logger, orders: map[string]*Status{}, pending: map[string]*pendingOrder{}}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	var readies []chan error
	for _, h := range []struct {
		name   string
		handle func(*record.Record, Order)
	}{{"billing", s.bill}, {"shipping", s.ship}} {
		c, err := consumer.New(b, consumer.FetchMaxWait(time.Second))
		if err == nil {
			err = c.AssignTopic(ctx, OrdersTopic, consumer.Start())
		}
		if err != nil {
			if c != nil {
				c.Close()
			}
			s.Close()
			return nil, err
		}
		ready := make(chan error, 1)
		readies = append(readies, ready)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.consume(runCtx, h.name, c, ends, ready, h.handle)
			select {
			case ready <- fmt.Errorf("the %s handler stopped before it read the topic", h.name):
			default: // it had caught up
			}
		}()
	}
	for _, ready := range readies {
		select {
		case err = <-ready:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close stops the handlers and the producer; it does not close the broker.
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return s.producer.Close()
}

// consume hands every OrderPlaced event to handle until ctx ends. Once
// c's position is at ends (each partition's), past the events the topic
// held when the service started, it sends nil on ready.
func (s *Service) consume(ctx context.Context, name string, c *consumer.Consumer, ends []int64, ready chan<- error, handle func(*record.Record, Order)) {
	caughtUp := func() bool {
		for p, end := range ends {
			if pos, ok := c.Position(OrdersTopic, int32(p)); end > 0 && (!ok || pos < end) {
				return false
			}
		}
		return true
	}
	if caughtUp() {
		ready <- nil
		ready = nil
	}
	for r, err := range c.Records(ctx) {
		if err != nil {
			if ctx.Err() != nil {
				return // a shutdown: ctx's error, the loop's last
			}
			s.logger.Error("consume", "handler", name, "err", err)
			if errors.Is(err, runnel.ErrClosed) {
				return
			}
			continue // Records backs off (RetryBackoff) before it tries again
		}
		var o Order
		if err := json.Unmarshal(r.Value, &o); err != nil {
			// A poison event: log it and go on, as a real handler
			// would send it to a dead-letter topic.
			s.logger.Error("bad event", "handler", name, "partition", r.Partition, "offset", r.Offset, "err", err)
		} else {
			handle(r, o)
		}
		if ready != nil && caughtUp() {
			ready <- nil
			ready = nil
		}
	}
}

func (s *Service) bill(r *record.Record, o Order) {
	s.update(r, o, func(st *Status) { st.Invoice = fmt.Sprintf("INV-%d-%d", r.Partition, r.Offset) })
}

func (s *Service) ship(r *record.Record, o Order) {
	s.update(r, o, func(st *Status) { st.Shipment = fmt.Sprintf("SHP-%s-%d", o.Customer, len(o.Items)) })
}

// update applies a handler's f to the order of the event r: the order's
// first event, as whichever handler saw it first recorded it. A later
// event with the same order ID is a duplicate (a client's retry after an
// unknown outcome) and is skipped, by both handlers alike.
func (s *Service) update(r *record.Record, o Order, f func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.orders[o.ID]
	if !ok {
		st = &Status{Order: o, Offset: r.Offset, Partition: r.Partition}
		s.orders[o.ID] = st
		delete(s.pending, o.ID) // claim and GET answer from st now
	}
	if st.Partition != r.Partition || st.Offset != r.Offset {
		s.logger.Info("duplicate order event skipped", "order", o.ID, "partition", r.Partition, "offset", r.Offset)
		return
	}
	f(st)
}

// pendingOrder is an order this process placed, or is placing under an
// Idempotency-Key, which no handler has seen yet.
type pendingOrder struct {
	order        Order
	placing      bool    // a request is placing it
	placed       *Status // where a request wrote it, if one did
	mayBeWritten bool    // a request that failed may have written it
	written      bool    // written after mayBeWritten: where, the handlers will say
}

// claimed is claim's answer.
type claimed int

const (
	claimPlace   claimed = iota // place the order
	claimPlaced                 // placed already: answer with its status
	claimOther                  // the key names another order
	claimBusy                   // another request is placing it
	claimWritten                // placed, where the handlers will say (acceptedMsg)
)

// sameOrder reports whether a and b are the same order, IDs aside.
func sameOrder(a, b Order) bool {
	return a.Customer == b.Customer && a.AmountCents == b.AmountCents && slices.Equal(a.Items, b.Items)
}

// idempotencyKey is what an Idempotency-Key header may hold.
var idempotencyKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// idempotencyKeyOf returns the Idempotency-Key of a request's header h
// ("" when it has none) and whether it is well-formed: one field line
// (two are one list, "k1, k2", as RFC 9110 combines them, which the
// draft says a client must not send), holding a key of idempotencyKey's
// characters, bare (as many APIs take it) or quoted (the draft's
// Structured Field String: "k1" is the key k1). An empty field is
// malformed, not "no key": a client whose key came out empty would have
// its order placed without one, and placed again by each retry.
func idempotencyKeyOf(h http.Header) (key string, ok bool) {
	vs := h.Values("Idempotency-Key")
	switch {
	case len(vs) == 0:
		return "", true
	case len(vs) > 1:
		return "", false
	}
	key = vs[0]
	if len(key) >= 2 && key[0] == '"' && key[len(key)-1] == '"' {
		key = key[1 : len(key)-1]
	}
	return key, idempotencyKey.MatchString(key)
}

// Handler serves POST /orders, GET /orders/{id}, GET /healthz and GET
// /livez.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", s.placeOrder)
	mux.HandleFunc("GET /orders/{id}", s.getOrder)
	mux.HandleFunc("GET /healthz", s.health)
	mux.HandleFunc("GET /livez", s.live)
	return mux
}

// healthTimeout bounds GET /healthz's and GET /livez's look at the
// broker: DescribeTopic waits for a partition that a config change or a
// topic's deletion holds (or waits for, behind an append stuck on a disk
// that hangs), and the probe answers rather than wait with it.
const healthTimeout = time.Second

// health serves GET /healthz, for a load balancer's or an orchestrator's
// readiness probe: 200 while every partition of the orders topic takes
// events, 503 otherwise, naming each partition that does not and its
// Kafka error (the cause, a file's path say, goes to the log, once each
// time what is wrong changes, not at every probe), or saying that the
// event log does not answer. A disk that hangs under an append does not
// show here (DescribeTopic does not wait for appends): the orders placed
// then time out. GET /livez tells which of these only a restart mends.
func (s *Service) health(w http.ResponseWriter, r *http.Request) {
	c := s.check(r)
	if c.problem != "" {
		http.Error(w, c.problem, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// live serves GET /livez, for an orchestrator's liveness probe: 503 when
// only a restart of the service mends what is wrong, 200 otherwise (the
// problem GET /healthz reports, if any, in the text). Only a restart
// mends:
//
//   - a partition of the orders topic whose log a failed write or fsync
//     fenced: it refuses events (log.ErrLogFenced, KAFKA_STORAGE_ERROR)
//     until the broker is opened again, which a restart does, once the
//     cause (a full disk, a failing device) is seen to;
//   - a broker closed under the service (runnel.ErrClosed);
//   - the orders topic deleted under the service (runnel.ErrUnknownTopic):
//     NewService, at the restart, creates it again, empty.
//
// A broker that does not answer within healthTimeout, a disk that is slow
// or hangs, is not one: /livez answers 200 (/healthz 503), as a restart
// would not mend it and would cost the requests in flight. Set the
// liveness probe's failure threshold to a few probes all the same.
//
// Every partition that refuses events here is fenced: a partition's Err
// also matches log.ErrLogFenced while a topic config change could not
// open its log again, which the broker's maintenance retries by itself
// (see runnel.Broker.AlterTopicConfig), but this service changes no
// topic config. One that does would give such a partition its
// MaintenanceInterval before it counts it as fenced.
func (s *Service) live(w http.ResponseWriter, r *http.Request) {
	c := s.check(r)
	if c.restart != "" {
		http.Error(w, c.restart, http.StatusServiceUnavailable)
		return
	}
	if c.problem != "" {
		fmt.Fprintf(w, "ok (not ready: %s)\n", c.problem)
		return
	}
	fmt.Fprintln(w, "ok")
}

// checked is what a probe found wrong: problem for GET /healthz (""
// when nothing is), restart for GET /livez (what only a restart mends,
// "" when nothing is).
type checked struct {
	problem, restart string
}

// check looks at the broker for a probe, within healthTimeout, and logs
// what it finds wrong when that changed (see healthChanged).
func (s *Service) check(r *http.Request) checked {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	info, err := s.b.DescribeTopic(ctx, OrdersTopic)
	if err != nil {
		c := checked{problem: "the event log does not answer"}
		switch {
		case errors.Is(err, runnel.ErrClosed):
			c = checked{problem: "the event log is closed", restart: "the event log is closed"}
		case errors.Is(err, runnel.ErrUnknownTopic):
			c = checked{problem: "the orders topic is gone", restart: "the orders topic is gone: a restart creates it again"}
		}
		if r.Context().Err() == nil { // not a probe that went away
			s.healthChanged(c.problem, "err", err)
		}
		return c
	}
	var refusing, fenced []string
	var causes []any
	for _, p := range info.Partitions {
		if p.Err != nil {
			name := fmt.Sprintf("%s-%d", OrdersTopic, p.Partition)
			refusing = append(refusing, fmt.Sprintf("%s (%s)", name, api.Name(p.Err)))
			causes = append(causes, name, p.Err)
			if errors.Is(p.Err, log.ErrLogFenced) {
				fenced = append(fenced, name)
			}
		}
	}
	var c checked
	if len(refusing) > 0 {
		c.problem = "partitions refusing events: " + strings.Join(refusing, ", ")
		s.healthChanged(c.problem, causes...)
	} else {
		s.healthChanged("")
	}
	if len(fenced) > 0 {
		c.restart = "partitions fenced, until a restart: " + strings.Join(fenced, ", ")
	}
	return c
}

// healthChanged logs what a probe found wrong (msg, with args: the
// causes), or that nothing is ("" once something was), when it differs
// from what the probe before found.
func (s *Service) healthChanged(msg string, args ...any) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if msg == s.unhealthy {
		return
	}
	switch {
	case msg != "":
		s.logger.Error("unhealthy: "+msg, args...)
	default:
		s.logger.Info("healthy again")
	}
	s.unhealthy = msg
}

func (s *Service) placeOrder(w http.ResponseWriter, r *http.Request) {
	var o Order
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	err := dec.Decode(&o)
	if err == nil {
		// One order per request: anything after it (a second order,
		// say) would otherwise be dropped without a word.
		var more json.RawMessage
		if err = dec.Decode(&more); err == io.EOF {
			err = nil
		} else if err == nil {
			err = errors.New("the body holds more than one JSON value")
		}
	}
	if err != nil {
		code := http.StatusBadRequest
		if tooLarge := new(http.MaxBytesError); errors.As(err, &tooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "bad order: "+err.Error(), code)
		return
	}
	if o.ID != "" {
		// Not taken, as no field the service does not take is: a
		// client counting on it to name its order would place it
		// under another ID each time.
		http.Error(w, "bad order: the service sets its id (name an order with an Idempotency-Key header)", http.StatusBadRequest)
		return
	}
	if o.Customer == "" || len(o.Items) == 0 || o.AmountCents <= 0 {
		http.Error(w, "bad order: customer, items and a positive amount_cents are required", http.StatusBadRequest)
		return
	}
	key, ok := idempotencyKeyOf(r.Header)
	if !ok {
		http.Error(w, "bad Idempotency-Key: one, of 1 to 64 of A-Z a-z 0-9 _ - (bare or quoted)", http.StatusBadRequest)
		return
	}
	keyed := key != ""
	if keyed {
		o.ID = "order-" + key
		st, c := s.claim(o)
		switch c {
		case claimOther:
			// The key names another order: refuse, as the
			// Idempotency-Key draft says, rather than answer with
			// that order or place this one, which the handlers
			// would skip as the other's duplicate.
			http.Error(w, "Idempotency-Key already used for another order", http.StatusUnprocessableEntity)
			return
		case claimBusy:
			// The draft's concurrent request: 409, to retry once
			// the first is answered.
			http.Error(w, "a request with this Idempotency-Key is placing the order: retry once it is answered", http.StatusConflict)
			return
		case claimPlaced:
			// A retry of an order already placed: where it was
			// placed, and how far the handlers have got with it.
			w.Header().Set("Location", "/orders/"+o.ID)
			writeJSON(w, http.StatusOK, st)
			return
		case claimWritten:
			w.Header().Set("Location", "/orders/"+o.ID)
			http.Error(w, acceptedMsg, http.StatusAccepted)
			return
		}
		// This request places it: the next with its key is
		// answered from how this one ends (see placed).
	} else {
		// Unique across restarts, and never a keyed order's: no
		// Idempotency-Key holds a '.', so a client cannot name an
		// order whose outcome was unknown (its 503 names its ID, and
		// the service keeps nothing of it) and have it answered 201
		// for another order that the handlers would skip.
		o.ID = "order." + rand.Text()[:12]
	}
	// Every answer from here on is the service's own: the cause of a
	// failure (a broker's error, a file's path) goes to the log, not to
	// the client, who can act on none of it.
	value, err := json.Marshal(o)
	if err != nil {
		s.logger.Error("encode order", "order", o.ID, "err", err)
		s.placed(o, nil, false)
		http.Error(w, "internal error: the order was not placed", http.StatusInternalServerError)
		return
	}
	rec := &record.Record{
		Topic:   OrdersTopic,
		Key:     []byte(o.Customer),
		Value:   value,
		Headers: []record.Header{{Key: "type", Value: []byte("OrderPlaced")}},
	}
	// The order's ctx is not the request's. That one ends when the client
	// goes away, and a record's ctx decides whether the record is written
	// until the record is sent: a client hanging up (or a proxy timing
	// out) would decide the order's fate at whatever moment it left. An
	// order is placed whether or not its client stays to hear so. This
	// ctx keeps the request's values, drops its cancellation, and bounds
	// only how long the order may wait unsent (placeTimeout). ProduceSync
	// then reports the order's outcome: nil means written; an error
	// matching ctx's, or a refusal of the broker's, means not written, so
	// the client may retry (producer.MayBeWritten).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), placeTimeout)
	defer cancel()
	// Acknowledged means durable (the broker's default fsync policy):
	// once this returns, billing and shipping will see the order even if
	// the process dies now.
	if err := s.producer.ProduceSync(ctx, rec); err != nil {
		s.logger.Error("produce", "order", o.ID, "err", err)
		msg := "the order was not placed: retry later"
		// Not written: the order's ctx ended before it was sent, or the
		// broker refused it. Otherwise (ErrDeliveryTimeout, a producer
		// closing, the broker failing after the append) it may have been.
		mayBeWritten := producer.MayBeWritten(err)
		if mayBeWritten {
			// The event may have been written. A retry with the same
			// Idempotency-Key cannot place it twice; one without, or
			// with a key the first did not have, gets another ID, and
			// places it a second time if it was: the client is told
			// the ID.
			msg = "the order may or may not have been placed (a retry with the same Idempotency-Key cannot place it twice)"
			if !keyed {
				msg = "the order may or may not have been placed, as " + o.ID + " (GET /orders/" + o.ID +
					" shows it once handled; a retry would place it again: name orders with an Idempotency-Key to retry them safely)"
			}
		}
		if st, code := s.placed(o, nil, mayBeWritten); code != 0 {
			// A handler has seen the order (an earlier attempt's
			// event, or this one's): it is placed, and where is known.
			w.Header().Set("Location", "/orders/"+o.ID)
			writeJSON(w, code, st)
			return
		}
		http.Error(w, msg, http.StatusServiceUnavailable)
		return
	}
	st, code := s.placed(o, &Status{Order: o, Partition: rec.Partition, Offset: rec.Offset}, false)
	w.Header().Set("Location", "/orders/"+o.ID)
	if code == http.StatusAccepted {
		http.Error(w, acceptedMsg, code)
		return
	}
	writeJSON(w, code, st)
}

// acceptedMsg answers a keyed order written after an earlier request may
// have written it: the handlers act on whichever of the two they see
// first, and skip the other, so where the order is is theirs to say.
const acceptedMsg = "the order is placed, once: GET its Location shows where once billing and shipping have seen it"

// claim answers how a request with the keyed order o goes on:
// claimPlaced, with the order's status, when a handler has seen it or a
// request has placed it; claimOther when the key names another order;
// claimBusy while another request places it; otherwise claimPlace,
// taking the key for this request, which must then call placed.
func (s *Service) claim(o Order) (Status, claimed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.orders[o.ID]; ok {
		if !sameOrder(st.Order, o) {
			return Status{}, claimOther
		}
		return *st, claimPlaced
	}
	k, ok := s.pending[o.ID]
	switch {
	case !ok:
		s.pending[o.ID] = &pendingOrder{order: o, placing: true}
		return Status{}, claimPlace
	case !sameOrder(k.order, o):
		return Status{}, claimOther
	case k.placing:
		return Status{}, claimBusy
	case k.placed != nil:
		return *k.placed, claimPlaced
	case k.written:
		return Status{}, claimWritten
	}
	k.placing = true // the request before failed: this one places it again
	return Status{}, claimPlace
}

// placed records how a request that placed order o ended, before its
// answer goes out (so that the client's next request finds it), and
// returns the answer to a request that wrote it: st is where it was
// written, nil if that failed. Until a handler sees the order, GET and
// a retry with its key answer from st. After a failure a retry with its
// key places it again; the key is kept, refusing another order, while an
// attempt may have written it (the handlers would skip another order
// under its ID as a duplicate), and forgotten otherwise, as nothing was
// placed.
//
// A write after an attempt that may have written the order does not
// say where the order is: the handlers act on the first of the two
// events they see and skip the other. So its answer is the handlers'
// status once they have seen the order (200 when they act on another
// event: an earlier request placed it), and 202 until then, when GET
// answers 404 and a retry 202 too, until a handler sees it.
//
// A request whose write failed is answered with the handlers' status
// (200) if they have seen the order; otherwise placed returns code 0,
// for the failure's answer.
func (s *Service) placed(o Order, st *Status, mayBeWritten bool) (Status, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.orders[o.ID]; ok { // a handler has seen it: answers come from its status
		if st == nil || h.Partition != st.Partition || h.Offset != st.Offset {
			return *h, http.StatusOK
		}
		return *st, http.StatusCreated
	}
	p, ok := s.pending[o.ID] // absent for an order without a key
	switch {
	case st != nil && !ok:
		s.pending[o.ID] = &pendingOrder{order: o, placed: st}
	case st != nil && p.mayBeWritten:
		p.placing, p.written = false, true
		return Status{}, http.StatusAccepted
	case st != nil:
		p.placing, p.placed = false, st
	case !ok: // an order without a key failed: nothing to remember
	case mayBeWritten || p.mayBeWritten:
		p.placing, p.mayBeWritten = false, true
	default:
		delete(s.pending, o.ID)
	}
	if st == nil {
		return Status{}, 0 // the failure's answer
	}
	return *st, http.StatusCreated
}

// status returns a copy of the order's status: a handler's, or where
// this process placed it if no handler has seen it yet.
func (s *Service) status(id string) (Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.orders[id]; ok {
		return *st, true
	}
	if p, ok := s.pending[id]; ok && p.placed != nil {
		return *p.placed, true
	}
	return Status{}, false
}

func (s *Service) getOrder(w http.ResponseWriter, r *http.Request) {
	out, ok := s.status(r.PathValue("id"))
	if !ok {
		// Never placed, or placed by another process (or before a
		// restart), or placed after an attempt that may have written it
		// too (answered 202), and not yet seen by a handler.
		http.Error(w, "no such order (yet)", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
