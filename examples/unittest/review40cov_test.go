package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/runneltest"
)

// mainChildEnv holds the arguments (newline-separated) with which
// TestReview40MainExitsNonZero's child runs main.
const mainChildEnv = "RUNNEL_TEST_UNITTEST_ARGS"

// A run that fails exits with status 1 and says why on standard error,
// prefixed with the program's name; no mail goes to standard output.
// main runs in a process of its own (the test binary, running this test
// with mainChildEnv set), as os.Exit would end the test's.
func TestReview40MainExitsNonZero(t *testing.T) {
	if testkit.ChildMain(mainChildEnv, "unittest", main) {
		return
	}
	for _, tc := range []struct{ name, args, want string }{
		{"bad flag", "-bogus", "flag provided but not defined"},
		{"no address", "", "unittest: no address given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := testkit.MainExit(t, "TestReview40MainExitsNonZero", mainChildEnv, tc.args)
			require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, "unittest: ")
			require.Contains(t, stderr, tc.want)
			require.NotContains(t, stdout, "mail to")
		})
	}
}

// A clock Register cannot encode (JSON times end at the year 9999) is
// Register's error, and nothing is produced: Now is the caller's, as
// the tests' fixed clocks show.
func TestReview40RegisterClockOutOfRange(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	s := &Signups{P: runneltest.NewProducer(t, b), Now: func() time.Time { return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }}
	err := s.Register(t.Context(), "ada@example.com")
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrBadEmail)
	require.Empty(t, runneltest.ConsumeAll(t, b, SignupsTopic), "nothing was produced")
}

// deleteSender sends, and then deletes the topic under the mailer.
type deleteSender struct {
	fakeSender
	del func()
}

func (s *deleteSender) Send(ctx context.Context, to, subject string) error {
	defer s.del()
	return s.fakeSender.Send(ctx, to, subject)
}

// The topic deleted under a Mailer (which the consumer reports) ends
// its Run with the consumer's error and the number sent, rather than
// wait for mails that will not come.
func TestReview40MailerTopicDeleted(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"))
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign(SignupsTopic, 0, consumer.Start()))
	ctx, cancel := context.WithTimeout(t.Context(), runneltest.DefaultWait)
	defer cancel()

	f := &deleteSender{del: func() { require.NoError(t, b.DeleteTopic(ctx, SignupsTopic)) }}
	n, err := (&Mailer{C: c, Sender: f}).Run(ctx, 2)
	require.Error(t, err)
	require.NoError(t, ctx.Err(), "Run ended with the deletion, not with ctx")
	require.Equal(t, 1, n)
	require.Equal(t, []string{"ada@example.com"}, f.sent)
}

// closeSender closes the mailer's consumer (a shutdown) and fails.
type closeSender struct {
	c    *consumer.Consumer
	fail error
}

func (s *closeSender) Send(context.Context, string, string) error {
	_ = s.c.Close()
	return s.fail
}

// A Send that fails while the consumer is being closed cannot put the
// event back (Seek fails): Run returns both errors, so that its caller
// learns the mail was not sent and that the next Run will not retry it.
func TestReview40MailerSeekFailsAfterSendFailure(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"))
	c := signupsConsumer(t, b)
	ctx, cancel := context.WithTimeout(t.Context(), runneltest.DefaultWait)
	defer cancel()

	down := errors.New("smtp down")
	n, err := (&Mailer{C: c, Sender: &closeSender{c: c, fail: down}}).Run(ctx, 1)
	require.ErrorIs(t, err, down)
	require.ErrorIs(t, err, consumer.ErrClosed)
	require.Zero(t, n)
}

// A run whose ctx has ended registers no one, mails no one, and fails
// with ctx's error.
func TestReview40RunCtxEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"ada@example.com"}, &out, io.Discard)
	require.ErrorIs(t, err, context.Canceled)
	require.Empty(t, out.String())
}

// A run none of whose addresses can be registered has done nothing it
// was asked: it fails (exit status 1), as one given no address does,
// rather than exit 0 as if the users had been welcomed.
func TestReview40RunNoAddressRegistered(t *testing.T) {
	var out, stderr bytes.Buffer
	err := run(t.Context(), []string{"nope", "ada@"}, &out, &stderr)
	require.Error(t, err)
	require.Empty(t, out.String())
	require.Contains(t, stderr.String(), `not registered: unittest: bad email address: "nope"`)
	require.Contains(t, stderr.String(), `not registered: unittest: bad email address: "ada@"`)
}
