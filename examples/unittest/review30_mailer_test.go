package main

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
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
func TestReview30MailerRunEndsWithCtx(t *testing.T) {
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
