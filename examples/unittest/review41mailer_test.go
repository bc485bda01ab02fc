package main

import (
	"context"
	"testing"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// A consumer closed under a Run, before its n mails are sent, ends the
// Records loop without an error (Records' doc: only ctx's end yields
// one): Run reports that it was cut short, with consumer.ErrClosed and
// the number sent, rather than nil as if all n had been sent.
func TestReview41MailerConsumerClosedMidRun(t *testing.T) {
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
