// Command unittest is a small application whose tests show runnel as an
// in-memory broker in unit tests (see main_test.go): a signup service
// announces each new user on the "signups" topic, and a mailer consumes
// the announcements and sends each user one welcome mail.
//
//	go run ./examples/unittest ada@example.com bob@example.com
//	go test ./examples/unittest
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"os"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
)

// SignupsTopic carries one event per registered user.
const SignupsTopic = "signups"

// ErrBadEmail is what Register says of an address it cannot use.
var ErrBadEmail = errors.New("unittest: bad email address")

// Signup is the event the signup service produces.
type Signup struct {
	Email string    `json:"email"`
	At    time.Time `json:"at"`
}

// Signups registers users and announces each one on SignupsTopic.
type Signups struct {
	P   *producer.Producer
	Now func() time.Time
}

// Register validates email and produces a Signup keyed by the address;
// it returns once the broker has acknowledged it.
//
// Errors: ErrBadEmail, or the producer's.
func (s *Signups) Register(ctx context.Context, email string) error {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return fmt.Errorf("%w: %q", ErrBadEmail, email)
	}
	v, err := json.Marshal(Signup{Email: email, At: s.Now().UTC()})
	if err != nil {
		return err
	}
	return s.P.ProduceSync(ctx, &record.Record{Topic: SignupsTopic, Key: []byte(email), Value: v})
}

// Sender sends one mail.
type Sender interface {
	Send(ctx context.Context, to, subject string) error
}

// Mailer welcomes every user that signs up, once, even if the same signup
// event is seen twice.
type Mailer struct {
	C      *consumer.Consumer
	Sender Sender
	sent   map[string]bool
}

// Run sends welcome mails until ctx ends or n mails are sent (n < 0: no
// limit). It returns the number sent, and nil only once n are: ctx's
// error when ctx ends first, consumer.ErrClosed when C is closed under
// it. A Send that fails ends it, and the next Run tries that mail again.
func (m *Mailer) Run(ctx context.Context, n int) (int, error) {
	if m.sent == nil {
		m.sent = map[string]bool{}
	}
	count := 0
	if n == 0 {
		return 0, nil // its n mails are sent: none
	}
	for r, err := range m.C.Records(ctx) {
		if err != nil {
			return count, err
		}
		var s Signup
		if err := json.Unmarshal(r.Value, &s); err != nil {
			return count, fmt.Errorf("signup at %s-%d@%d: %w", r.Topic, r.Partition, r.Offset, err)
		}
		if m.sent[s.Email] {
			continue
		}
		if err := m.Sender.Send(ctx, s.Email, "Welcome!"); err != nil {
			// Not sent: back to this event, for the next Run to
			// send it (Records has moved the position past it).
			if serr := m.C.Seek(r.Topic, r.Partition, consumer.At(r.Offset)); serr != nil {
				return count, errors.Join(err, serr)
			}
			return count, err
		}
		m.sent[s.Email] = true
		if count++; count == n {
			return count, nil // even if ctx ended meanwhile: all n were sent
		}
	}
	// Records ends without an error (ctx's, when ctx ends, is its last)
	// only when the consumer is closed.
	return count, consumer.ErrClosed
}

type printSender struct{ out io.Writer }

func (p printSender) Send(_ context.Context, to, subject string) error {
	_, err := fmt.Fprintf(p.out, "mail to %s: %s\n", to, subject)
	return err
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "unittest:", err)
		os.Exit(1)
	}
}

// run registers each address in args and lets the mailer welcome them,
// on an in-memory broker. The mails go to out; the usage, and the
// addresses it could not register, to stderr. It fails if it can
// register none of them.
func run(ctx context.Context, args []string, out, stderr io.Writer) (err error) {
	fs := flag.NewFlagSet("unittest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: unittest EMAIL...\n\nRegisters each address and welcomes each new user once, on an in-memory broker.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		fs.Usage()
		return errors.New("no address given")
	}
	b, err := runnel.Open(runnel.Config{})
	if err != nil {
		return err
	}
	// Close's error is the run's, as in quickstart: on disk (Config.Dir)
	// it says that a write or fsync of the logs failed. (A producer's and
	// a consumer's Close always return nil.)
	defer func() {
		if cerr := b.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close broker: %w", cerr))
		}
	}()
	if err := b.CreateTopic(ctx, SignupsTopic, log.TopicConfig{Partitions: 2}); err != nil {
		return err
	}
	p, err := producer.New(b)
	if err != nil {
		return err
	}
	defer p.Close()
	c, err := consumer.New(b)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.AssignTopic(ctx, SignupsTopic, consumer.Start()); err != nil {
		return err
	}

	s := &Signups{P: p, Now: time.Now}
	// The users registered: an address given twice is announced twice,
	// and welcomed once.
	users := map[string]bool{}
	for _, email := range args {
		if err := s.Register(ctx, email); err != nil {
			fmt.Fprintln(stderr, "not registered:", err)
			continue
		}
		users[email] = true
	}
	if len(users) == 0 {
		return errors.New("no address registered")
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m := &Mailer{C: c, Sender: printSender{out}}
	_, err = m.Run(ctx, len(users))
	return err
}
