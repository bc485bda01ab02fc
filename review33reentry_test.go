package runnel

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/stretchr/testify/require"
)

// callBounded runs call on a goroutine of its own and waits for it, up to
// a generous bound: a hang guard, for a handler whose call deadlocks on a
// lock that the logging code holds. It reports whether call returned;
// if not, call returns once the lock is released, after the handler has
// given up on it and the logging code has gone on.
func callBounded(call func()) bool {
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		call()
	}()
	select {
	case <-returned:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

// lineCall is the rig of the tests of what a Logger's handler may call:
// its logger's handler, once armed, calls call on the first line whose
// message is msg, bounded by callBounded, and records that it saw the
// line (seen) and whether call returned (returned); done is closed once
// the handler is done with the line.
type lineCall struct {
	msg                   string
	call                  func()
	direct                bool // call on the handler's goroutine (see onceOnLineDirect)
	armed, seen, returned atomic.Bool
	done                  chan struct{}
}

// onceOnLine returns a lineCall that, once armed, calls call on the
// first line msg: open a broker with its logger, arm it, make the line.
func onceOnLine(msg string, call func()) *lineCall {
	return &lineCall{msg: msg, call: call, done: make(chan struct{})}
}

// onceOnLineDirect is onceOnLine for a call made on the handler's own
// goroutine, as a handler makes it, not bounded: a Close, which returns
// at once on a goroutine of the broker's that hands lines on, and waits
// for them on any other (see Broker.waitLines). A call that blocks leaves
// done open: the test's wait for it is the bound.
func onceOnLineDirect(msg string, call func()) *lineCall {
	o := onceOnLine(msg, call)
	o.direct = true
	return o
}

// logger returns the logger whose handler calls o.call (see lineCall).
func (o *lineCall) logger() *slog.Logger {
	return slog.New(testkit.LineFunc(func(r slog.Record) {
		if !o.armed.Load() || r.Message != o.msg || o.seen.Swap(true) {
			return
		}
		defer close(o.done)
		if o.direct {
			o.call()
			o.returned.Store(true)
			return
		}
		o.returned.Store(callBounded(o.call))
	}))
}

// TestReview33LoggerMayCallTheBroker: the broker's Logger handler may
// call the broker's admin methods (a handler that makes sure the topic it
// ships lines to exists, say). On the old code "auto-created topic" was
// logged holding the admin token, which CreateTopic waits for: the
// handler's call, and the Produce that auto-created the topic, deadlocked
// (until the call's ctx ended: never, with context.Background).
func TestReview33LoggerMayCallTheBroker(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("auto-created topic", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, ErrTopicExists) {
			t.Errorf("CreateTopic from the handler: %v", err)
		}
	})
	b = open(t, Config{AutoCreateTopics: true, DefaultPartitions: 1, Logger: h.logger()})
	h.armed.Store(true)
	produce(t, b, "t", 0, "a") // auto-creates t, and logs it
	require.True(t, h.seen.Load(), "no \"auto-created topic\" line")
	require.True(t, h.returned.Load(), "the handler's CreateTopic blocked: the broker logs holding the admin token")
	require.Equal(t, []string{"logs", "t"}, b.Topics())
}
