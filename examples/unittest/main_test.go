package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// The whole setup is three lines: a broker with the topic, a producer on
// it (both closed when the test ends, the producer first), and
// runneltest.ConsumeAll to see exactly what was produced.
func TestRegisterAnnouncesSignup(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 2))
	p := runneltest.NewProducer(t, b)
	s := &Signups{P: p, Now: func() time.Time { return t0 }}
	require.NoError(t, s.Register(context.Background(), "ada@example.com"))

	recs := runneltest.ConsumeAll(t, b, SignupsTopic)
	require.Len(t, recs, 1, "one event, nothing else")
	require.Equal(t, "ada@example.com", string(recs[0].Key))
	require.Equal(t, producer.KeyPartition(recs[0].Key, 2), recs[0].Partition, "keyed by the address")
	var got Signup
	require.NoError(t, json.Unmarshal(recs[0].Value, &got))
	require.Equal(t, Signup{Email: "ada@example.com", At: t0}, got)
}

func TestRegisterRejectsBadEmail(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	s := &Signups{P: runneltest.NewProducer(t, b), Now: time.Now}
	for _, bad := range []string{"", "ada", "Ada <ada@example.com>", "ada@"} {
		require.ErrorIs(t, s.Register(context.Background(), bad), ErrBadEmail, bad)
	}
	require.Empty(t, runneltest.ConsumeAll(t, b, SignupsTopic), "nothing was produced")
}

// A broker whose answer is lost after it appended the event: the
// producer retries, and idempotence keeps the event once.
// runneltest.Faults sits between the producer and the broker, failing
// what its rules match (kfake's ControlKey and Fault).
func TestRegisterSurvivesALostAnswer(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 2))
	f := runneltest.NewFaults(t, b)
	lost := f.Add(runneltest.Fault{Op: runneltest.OpProduce, Topic: SignupsTopic,
		Action: runneltest.LoseResponse, Err: api.ErrRequestTimedOut, Count: 1})
	s := &Signups{P: runneltest.NewProducer(t, f), Now: func() time.Time { return t0 }}
	require.NoError(t, s.Register(context.Background(), "ada@example.com"))
	require.Equal(t, 1, lost.Hits(), "the first answer was lost")

	recs := runneltest.ConsumeAll(t, b, SignupsTopic)
	require.Len(t, recs, 1, "appended once, though sent twice")
	require.Equal(t, "ada@example.com", string(recs[0].Key))
}

// A refusal that retrying cannot mend reaches Register's caller, with
// its cause, and nothing is written.
func TestRegisterReportsARefusal(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	f := runneltest.NewFaults(t, b)
	f.Add(runneltest.Fault{Op: runneltest.OpProduce, Err: api.ErrPolicyViolation, Count: runneltest.Unlimited})
	s := &Signups{P: runneltest.NewProducer(t, f), Now: time.Now}
	require.ErrorIs(t, s.Register(context.Background(), "ada@example.com"), api.ErrPolicyViolation)
	require.Empty(t, runneltest.ConsumeAll(t, b, SignupsTopic))
}

type fakeSender struct {
	sent []string
	fail error
}

func (f *fakeSender) Send(_ context.Context, to, _ string) error {
	if f.fail != nil {
		return f.fail
	}
	f.sent = append(f.sent, to)
	return nil
}

func signup(t *testing.T, email string) *record.Record {
	v, err := json.Marshal(Signup{Email: email, At: t0})
	require.NoError(t, err)
	return &record.Record{Key: []byte(email), Value: v}
}

// signupsConsumer returns a consumer of the signups topic from its
// start, closed when the test ends (runneltest.NewConsumer), for a
// Mailer to read.
func signupsConsumer(t *testing.T, b *runnel.Broker) *consumer.Consumer {
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign(SignupsTopic, 0, consumer.Start()))
	return c
}

// The mailer's test feeds it events with runneltest.Produce: no producer
// needed, and a duplicate event is one line.
func TestMailerWelcomesEachUserOnce(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"), signup(t, "ada@example.com"), signup(t, "bob@example.com"))

	c := signupsConsumer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	var f fakeSender
	m := &Mailer{C: c, Sender: &f}
	n, err := m.Run(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"ada@example.com", "bob@example.com"}, f.sent)
}

func TestMailerStopsOnSendFailure(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"))
	c := signupsConsumer(t, b)

	// Every wait bounded: a Mailer that went on past the failure would
	// fail the test in seconds, not hang it until go test's -timeout.
	ctx, cancel := context.WithTimeout(context.Background(), runneltest.DefaultWait)
	defer cancel()

	down := errors.New("smtp down")
	m := &Mailer{C: c, Sender: &fakeSender{fail: down}}
	n, err := m.Run(ctx, 1)
	require.ErrorIs(t, err, down)
	require.Zero(t, n)
}

func TestMailerRejectsBadEvent(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.ProduceValues(t, b, SignupsTopic, "not json")
	c := signupsConsumer(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), runneltest.DefaultWait)
	defer cancel()
	m := &Mailer{C: c, Sender: &fakeSender{}}
	_, err := m.Run(ctx, 1)
	var syntax *json.SyntaxError
	require.ErrorAs(t, err, &syntax)
	require.Contains(t, err.Error(), "signups-0@0")
}

func TestRun(t *testing.T) {
	var out, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"ada@example.com", "nope", "bob@example.com"}, &out, &stderr))
	s := out.String()
	require.Contains(t, s, "mail to ada@example.com: Welcome!")
	require.Contains(t, s, "mail to bob@example.com: Welcome!")
	require.Contains(t, stderr.String(), `not registered: unittest: bad email address: "nope"`)
}

// TestRunSameAddressTwice: an address given twice is registered twice
// (two events) and welcomed once; the run ends once every user has been
// welcomed, not when the wait for a second mail that never comes times
// out (it failed with context.DeadlineExceeded after 10 s).
func TestRunSameAddressTwice(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"ada@example.com", "ada@example.com", "bob@example.com"}, &out, io.Discard))
	require.Equal(t, 1, strings.Count(out.String(), "mail to ada@example.com"), out.String())
	require.Equal(t, 1, strings.Count(out.String(), "mail to bob@example.com"), out.String())
}

// TestRunHelp: -h prints the usage and registers nobody (it was taken for
// an address).
func TestRunHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var out, stderr bytes.Buffer
		require.NoError(t, run(context.Background(), []string{arg}, &out, &stderr))
		require.Contains(t, stderr.String(), "usage: unittest EMAIL...")
		require.NotContains(t, stderr.String(), "not registered")
		require.Empty(t, out.String())
	}
	var out bytes.Buffer
	require.Error(t, run(context.Background(), []string{"-x"}, &out, io.Discard))
}

// TestRunNoAddress: run with no address prints the usage and fails (it
// printed nothing and exited 0, as if it had done something).
func TestRunNoAddress(t *testing.T) {
	var stderr bytes.Buffer
	require.ErrorContains(t, run(context.Background(), nil, io.Discard, &stderr), "no address given")
	require.Contains(t, stderr.String(), "usage: unittest EMAIL...")
}

// Run(ctx, 0) has sent its n mails before it reads anything: it returns
// 0 at once and mails no one. It used to mail every user there was and
// then wait for ctx to end (count++ never equals 0).
func TestMailerRunZero(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"), signup(t, "bob@example.com"))
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign(SignupsTopic, 0, consumer.Start()))
	ctx, cancel := context.WithTimeout(context.Background(), runneltest.DefaultWait)
	defer cancel()

	var f fakeSender
	m := &Mailer{C: c, Sender: &f}
	n, err := m.Run(ctx, 0)
	require.NoError(t, err, "it waited for ctx")
	require.Zero(t, n)
	require.Empty(t, f.sent)

	// The records are still there for the next Run.
	n, err = m.Run(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"ada@example.com", "bob@example.com"}, f.sent)
}

// A clock Register cannot encode (JSON times end at the year 9999) is
// Register's error, and nothing is produced: Now is the caller's, as
// the tests' fixed clocks show.
func TestRegisterClockOutOfRange(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	s := &Signups{P: runneltest.NewProducer(t, b), Now: func() time.Time { return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }}
	err := s.Register(t.Context(), "ada@example.com")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrBadEmail)
	require.Empty(t, runneltest.ConsumeAll(t, b, SignupsTopic), "nothing was produced")
}
