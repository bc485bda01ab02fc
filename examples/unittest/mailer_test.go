package main

import (
	"context"
	"errors"
	"testing"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// cancelSender sends, and then ends the Run's ctx.
type cancelSender struct {
	fakeSender
	cancel context.CancelFunc
}

func (s *cancelSender) Send(ctx context.Context, to, subject string) error {
	defer s.cancel()
	return s.fakeSender.Send(ctx, to, subject)
}

// Run ends when ctx does, before its n mails: it returns the number sent
// and ctx's error, not nil as if all n had been sent.
func TestMailerRunEndsWithCtx(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"))
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign(SignupsTopic, 0, consumer.Start()))
	ctx, cancel := context.WithTimeout(context.Background(), runneltest.DefaultWait)
	defer cancel()

	f := &cancelSender{cancel: cancel}
	n, err := (&Mailer{C: c, Sender: f}).Run(ctx, 5)
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, 1, n)
	require.Equal(t, []string{"ada@example.com"}, f.sent)
}

// A mail whose Send failed is not sent: the next Run (the records are
// still there for it, as TestMailerRunZero shows) sends it, rather than
// skip the user whose event the failed Run had read.
func TestMailerRetriesAfterSendFailure(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"), signup(t, "bob@example.com"))
	c := runneltest.NewConsumer(t, b)
	require.NoError(t, c.Assign(SignupsTopic, 0, consumer.Start()))
	ctx, cancel := context.WithTimeout(context.Background(), runneltest.DefaultWait)
	defer cancel()

	down := errors.New("smtp down")
	f := &fakeSender{fail: down}
	m := &Mailer{C: c, Sender: f}
	n, err := m.Run(ctx, 2)
	require.ErrorIs(t, err, down)
	require.Zero(t, n)

	f.fail = nil // the mail server is back
	n, err = m.Run(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{"ada@example.com", "bob@example.com"}, f.sent, "every user welcomed")
}

// A consumer closed under a Run, before its n mails are sent, ends the
// Records loop without an error (Records' doc: only ctx's end yields
// one): Run reports that it was cut short, with consumer.ErrClosed and
// the number sent, rather than nil as if all n had been sent.
func TestMailerConsumerClosedMidRun(t *testing.T) {
	b := runneltest.NewBroker(t, runneltest.Topic(SignupsTopic, 1))
	runneltest.Produce(t, b, SignupsTopic, signup(t, "ada@example.com"), signup(t, "bob@example.com"))
	c := signupsConsumer(t, b)
	ctx, cancel := context.WithTimeout(t.Context(), runneltest.DefaultWait)
	defer cancel()

	n, err := (&Mailer{C: c, Sender: &closeSender{c: c}}).Run(ctx, 2)
	require.ErrorIs(t, err, consumer.ErrClosed)
	require.NoError(t, ctx.Err(), "ended by the Close, not by ctx")
	require.Equal(t, 1, n, "the first mail was sent, then the consumer closed")
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
func TestMailerTopicDeleted(t *testing.T) {
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
func TestMailerSeekFailsAfterSendFailure(t *testing.T) {
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
