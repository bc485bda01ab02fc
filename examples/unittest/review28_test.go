package main

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
)

// A mail whose Send failed is not sent: the next Run (the records are
// still there for it, as TestMailerRunZero shows) sends it, rather than
// skip the user whose event the failed Run had read.
func TestReview28MailerRetriesAfterSendFailure(t *testing.T) {
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
