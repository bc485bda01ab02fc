package producer_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/require"
)

// msgRecorder is a slog.Handler that keeps each record's message.
type msgRecorder struct {
	mu   sync.Mutex
	msgs []string
}

func (l *msgRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *msgRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	return nil
}
func (l *msgRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *msgRecorder) WithGroup(string) slog.Handler      { return l }

func (l *msgRecorder) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, m := range l.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// What the producer logs of a batch refused for its sequence numbers: a
// retry under a new producer id when it retries it, and only then; a
// batch an earlier attempt of which may have been appended fails instead,
// and its log says so, not that it is retried.
func TestSequenceGapLog(t *testing.T) {
	const retrying = "sequence numbers refused: the broker lost records or never had them; retrying under a new producer id"
	for _, unsure := range []bool{false, true} {
		b := newBroker(t, runneltest.Topic("t", 1))
		c := newAckClient(b)
		c.fault = func(attempt int) (bool, error) {
			switch {
			case attempt == 0 && unsure:
				return true, api.ErrRequestTimedOut // appended, answered as if not
			case attempt == 0, attempt == 1 && unsure:
				return false, api.ErrOutOfOrderSequence
			}
			return false, nil
		}
		stop := c.answerAll(nil)
		logs := &msgRecorder{}
		p := newProducer(t, c, producer.DefaultTopic("t"), producer.RetryBackoff(time.Millisecond), producer.Logger(slog.New(logs)))
		err := p.ProduceSync(testCtx(t), fiveByteRecords(1)...)
		stop()
		if unsure {
			require.ErrorIs(t, err, producer.ErrOutOfOrderSequence)
			require.Zero(t, logs.count(retrying), "not retried")
			require.Equal(t, 1, logs.count("batch failed"))
		} else {
			require.NoError(t, err)
			require.Equal(t, 1, logs.count(retrying))
			require.Zero(t, logs.count("batch failed"))
		}
	}
}
