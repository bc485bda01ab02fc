// Command microservice is an HTTP order service with a broker inside: each
// order placed with POST /orders becomes an event on the "orders" topic,
// and billing and shipping handlers in the same process consume the events
// and fill in the order's invoice and shipment, which GET /orders/{id}
// shows. No Kafka cluster to run: the event log lives in the process (in
// memory, or durably on disk with -dir, where a restart rebuilds the state
// from the events).
//
//	go run ./examples/microservice -addr localhost:8080 [-dir DIR] [-shutdown-timeout 20s]   # Ctrl-C or SIGTERM stops it, a second one at once
//	curl -d '{"customer":"ada","items":["book"],"amount_cents":1299}' localhost:8080/orders
//	curl localhost:8080/orders/ID    # ID from the answer above
//	curl localhost:8080/healthz      # readiness: 200 while every partition takes orders
//	curl localhost:8080/livez        # liveness: 503 once only a restart mends it (a partition fenced by a failed fsync, the topic deleted)
//	curl -H 'Idempotency-Key: k1' -d '{...}' localhost:8080/orders   # retried safely: ID order-k1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/runnel/runnel"
)

func main() {
	// Ctrl-C (SIGINT) and a service manager's stop (SIGTERM: Kubernetes,
	// Docker, systemd) shut down cleanly: HTTP first, then the handlers
	// and the producer, then the broker, whose logs close cleanly. A
	// second signal during the shutdown (a request that does not finish,
	// say) exits at once, as most servers do: the broker is then not
	// closed, and a log on disk recovers at the next start.
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for n := 0; ; n++ {
			select {
			case sig := <-sigs:
				if n > 0 {
					fmt.Fprintf(os.Stderr, "microservice: %v again: exiting at once\n", sig)
					os.Exit(forcedExit)
				}
				fmt.Fprintf(os.Stderr, "microservice: %v: shutting down (again to exit at once)\n", sig)
				cancel()
			case <-done:
				return
			}
		}
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil)
	signal.Stop(sigs)
	close(done)
	<-watched
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "microservice:", err)
		os.Exit(1)
	}
}

// stopped is run's answer to err, the failure of a start-up step that
// ctx governs: a signal during the step (ctx ended) is a clean stop, not
// a failure, so the service exits 0 saying where it stopped; any other
// error is returned.
func stopped(ctx context.Context, err error, out io.Writer, step string) error {
	if ctx.Err() != nil {
		fmt.Fprintln(out, "stopped while", step)
		return nil
	}
	return err
}

// The HTTP server's limits on a client: one that sends its request
// slowly, or keeps a connection idle, holds a goroutine and a socket no
// longer than this (an order is a few hundred bytes; a placing request
// then waits on its produce, bounded by the delivery timeout, which no
// server timeout cuts short).
var (
	readTimeout = 30 * time.Second // the request, headers and body
	idleTimeout = 2 * time.Minute  // a kept-alive connection between requests
)

// defaultShutdownTimeout is how long a shutdown waits, unless
// -shutdown-timeout says otherwise, for the requests under way: long
// enough for an order being placed to be answered (POST /orders answers
// within placeTimeout + deliveryTimeout), and within the 30 s a service
// manager commonly gives a service to stop before it kills it
// (Kubernetes' terminationGracePeriodSeconds). A shorter timeout cuts
// such a request short: the shutdown then closes the producer, so the
// order may or may not have been placed (its client told so, if the
// answer goes out before the process exits), and the run fails saying
// the shutdown timed out. A retry with the order's Idempotency-Key, once
// the service is back, cannot place it twice.
const defaultShutdownTimeout = placeTimeout + deliveryTimeout

// forcedExit is the exit status after a second signal: 130, what a shell
// reports for a program that Ctrl-C ended.
const forcedExit = 130

// run serves until ctx ends; ready, if set, learns the address it listens
// on. The log goes to out, the usage (-h, or a flag that is wrong) to
// stderr, as the flag package's own output does.
func run(ctx context.Context, args []string, out, stderr io.Writer, ready func(addr string)) (err error) {
	fs := flag.NewFlagSet("microservice", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "localhost:8080", "address to serve HTTP on")
	dir := fs.String("dir", "", "keep the event log on disk in this directory (default: in memory)")
	shutdownTimeout := fs.Duration("shutdown-timeout", defaultShutdownTimeout, "how long a shutdown waits for the requests under way (the default covers an order's wait for buffer space and its delivery timeout)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return nil // -h: the usage is printed, and that is all
	} else if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: microservice takes flags only (-h lists them)", fs.Arg(0))
	}
	logger := slog.New(slog.NewTextHandler(out, nil))

	// OpenContext: a signal during a long recovery after a crash stops
	// it (the next start recovers from where it was).
	b, err := runnel.OpenContext(ctx, runnel.Config{Dir: *dir, Logger: logger})
	if err != nil {
		return stopped(ctx, err, out, "opening the broker")
	}
	// Close closes the logs cleanly: its error (a write or fsync that
	// failed) is the run's, so that the service exits 1 saying so.
	defer func() {
		if cerr := b.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close broker: %w", cerr))
		}
	}()
	svc, err := NewService(ctx, b, logger)
	if err != nil {
		return stopped(ctx, err, out, "starting the service")
	}
	defer func() {
		if cerr := svc.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close service: %w", cerr))
		}
	}()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: readTimeout, IdleTimeout: idleTimeout}
	logger.Info("serving", "addr", ln.Addr().String(), "dir", *dir)
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err = srv.Shutdown(shutdown); err != nil {
		err = fmt.Errorf("shutdown: requests still under way after %v: %w", *shutdownTimeout, err)
	}
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return err
}
