package runnel

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
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
	case <-time.After(testkit.HangGuard):
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

// TestLoggerMayCallTheBroker: the broker's Logger handler may
// call the broker's admin methods (a handler that makes sure the topic it
// ships lines to exists, say). On the old code "auto-created topic" was
// logged holding the admin token, which CreateTopic waits for: the
// handler's call, and the Produce that auto-created the topic, deadlocked
// (until the call's ctx ended: never, with context.Background).
func TestLoggerMayCallTheBroker(t *testing.T) {
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

// TestLoggerMayProduceToTheRollingPartition: the broker's Logger
// handler may produce to the partition whose log logged the line (an
// appender that ships the broker's lines to one of its topics). On the
// old code the log logged "rolled segment" holding its writer lock
// (log.Log.mu), which the handler's Produce waits for: that Produce, the
// one that rolled, and every later append to the partition deadlocked.
func TestLoggerMayProduceToTheRollingPartition(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("rolled segment", func() {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "rolled segment")})
		if err != nil {
			t.Errorf("Produce from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	h.armed.Store(true)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")
	require.True(t, h.seen.Load())
	require.True(t, h.returned.Load(), "the handler's Produce blocked: the log logs its roll holding its writer lock")
}

// TestLoggerMayCallTheBrokerOnLogCreated: the lines of a log
// that an admin call opens ("log created", recovery) reach the handler
// once the call has given the admin token back, as Config.Logger says of
// the broker's own lines: a handler may call an admin method on them. On
// the old code they were logged from inside log.Open, under the token: the
// handler's CreateTopic blocked (callBounded's 10s), and returned only
// once Close let it in, with "broker is closed".
func TestLoggerMayCallTheBrokerOnLogCreated(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("log created", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, ErrTopicExists) {
			t.Errorf("CreateTopic from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	h.armed.Store(true)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	require.True(t, h.seen.Load())
	require.True(t, h.returned.Load(), "CreateTopic from the handler of log created blocked")
}

// TestLoggerMayProduceToTheReopenedPartition: the lines of a
// partition's log that a config change reopens ("log opened") reach the
// handler once the reopen has released the partition's lock (and the
// admin token): the handler may produce to that partition. On the old
// code they were logged from inside log.Open, under Partition.Reopen's
// write lock, which the handler's Produce waits for: it blocked
// (callBounded's 10s), and so did the config change.
func TestLoggerMayProduceToTheReopenedPartition(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("log opened", func() {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, "log opened")})
		if err != nil {
			t.Errorf("Produce from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	h.armed.Store(true)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.RetentionBytes = 1 << 20 }))
	require.True(t, h.seen.Load())
	require.True(t, h.returned.Load(), "Produce from the handler of a reopen's log opened blocked")
}

// TestProduceLineNotHandedOnHoldingTheMaintenanceToken:
// Config.Logger lets a handler call Maintain on every line but those of
// a partition's maintenance, which may come holding the maintenance
// token. A Produce's "rolled segment" is not one; but when it is logged
// while a Maintain's own lines are being handed on (here its handler is
// slow), the Produce leaves it to the goroutine handing lines on — the
// Maintain's, which holds the token. A handler calling Maintain on that
// roll then waits for the token its own goroutine holds.
func TestProduceLineNotHandedOnHoldingTheMaintenanceToken(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	var armed, inRetention, rolled, returned atomic.Bool
	retentionLine := make(chan struct{})
	release := make(chan struct{})
	b = open(t, Config{Logger: slog.New(testkit.LineFunc(func(r slog.Record) {
		if !armed.Load() {
			return
		}
		switch {
		case r.Message == "deleting segment" && !inRetention.Swap(true):
			close(retentionLine)
			select { // a slow handler, on a line of the maintenance
			case <-release:
			case <-time.After(testkit.HangGuard):
				t.Error("release never came")
			}
		case r.Message == "rolled segment" && !rolled.Swap(true):
			returned.Store(callBounded(func() {
				if err := b.Maintain(ctx); err != nil {
					t.Errorf("Maintain from the handler: %v", err)
				}
			}))
		}
	}))})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, RetentionBytes: 1}}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")
	produce(t, b, "t", 0, "c")
	armed.Store(true)
	maintained := make(chan error, 1)
	go func() { maintained <- b.Maintain(ctx) }()
	select {
	case <-retentionLine:
	case <-time.After(testkit.HangGuard):
		t.Fatal("Maintain logged no \"deleting segment\"")
	}
	produce(t, b, "t", 0, "d") // rolls: its line comes while the Maintain's handler runs
	close(release)
	require.NoError(t, testkit.Await(t, maintained, "Maintain's answer"))
	require.True(t, rolled.Load(), "the Produce's roll was never handed on")
	require.True(t, returned.Load(), "Maintain from the handler of a Produce's \"rolled segment\" blocked: the line was handed on holding the maintenance token")
}

// TestHandlerMayCallMaintainOnAMaintenanceLine: the lines of a
// partition's maintenance ("deleting segment" here) are handed on once
// the maintenance token is given back (Config.Logger): a handler may
// call Maintain on them.
func TestHandlerMayCallMaintainOnAMaintenanceLine(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	h := onceOnLine("deleting segment", func() {
		if err := b.Maintain(ctx); err != nil {
			t.Errorf("Maintain from the handler: %v", err)
		}
	})
	b = open(t, Config{Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, RetentionBytes: 1}}))
	produce(t, b, "t", 0, "a")
	produce(t, b, "t", 0, "b")
	produce(t, b, "t", 0, "c")
	h.armed.Store(true)
	require.NoError(t, b.Maintain(ctx))
	require.True(t, h.seen.Load(), "Maintain logged no \"deleting segment\"")
	require.True(t, h.returned.Load(), "Maintain from the handler of a maintenance line blocked")
}

// TestLoggerMayCallAdminOnARetryByAConfigCall: Config.Logger
// says an admin call hands on the lines of the logs it opened once it
// has given the admin token back, so that a handler may call the admin
// methods on them. An UpdateTopicConfig that changes nothing tries again
// the failed reopen of a partition (RetryReopen), under the admin token,
// with the options of the call whose reopen failed: the new log's
// recovery lines ("log opened") must wait for the token too.
func TestLoggerMayCallAdminOnARetryByAConfigCall(t *testing.T) {
	ctx := context.Background()
	var failList atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if failList.Load() && op == vfs.OpList && filepath.ToSlash(name) == "/data/t-0" {
			return vfs.ErrInjected
		}
		return nil
	}))
	var b *Broker
	h := onceOnLine("log opened", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, ErrTopicExists) {
			t.Errorf("CreateTopic from the handler: %v", err)
		}
	})
	b = open(t, Config{Dir: "/data", FS: fsys, Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	produce(t, b, "t", 0, "a")
	failList.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	failList.Store(false)
	h.armed.Store(true)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(*log.Config) {})) // retries the reopen
	require.True(t, h.seen.Load(), "the retried reopen logged no \"log opened\"")
	require.True(t, h.returned.Load(), "CreateTopic from the handler of a retried reopen's \"log opened\" blocked: the line was handed on holding the admin token")
	produce(t, b, "t", 0, "b")
}

// TestLoggerMayCallAdminOnAReopenedLogsClose: Config.Logger
// lets a handler call the admin methods on a log's lines. A config
// change reopens each partition under the admin token: the old log's
// Close writes a producer-state snapshot and prunes the old ones, and a
// removal that fails is logged ("producer-state snapshot not removed").
// That line must not reach the handler while the call holds the token.
func TestLoggerMayCallAdminOnAReopenedLogsClose(t *testing.T) {
	ctx := context.Background()
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpRemove && filepath.Ext(name) == ".snapshot" {
			return vfs.ErrInjected
		}
		return nil
	}))
	var b *Broker
	h := onceOnLine("producer-state snapshot not removed", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		if err != nil && !errors.Is(err, ErrTopicExists) {
			t.Errorf("CreateTopic from the handler: %v", err)
		}
	})
	b = open(t, Config{Dir: "/data", FS: fsys, Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}}))
	for _, v := range []string{"a", "b", "c", "d", "e"} {
		produce(t, b, "t", 0, v) // each rolls, and snapshots
	}
	h.armed.Store(true)
	require.NoError(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }))
	require.True(t, h.seen.Load(), "the reopen's Close logged no \"producer-state snapshot not removed\"")
	require.True(t, h.returned.Load(), "CreateTopic from the handler of a reopened log's Close line blocked: the line was handed on holding the admin token")
}

// TestLoggerMayCallTheBrokerOnACreatedPartitionsLine: the lines
// of the logs CreatePartitions opens ("log created") reach the handler
// once the call has given the admin token back, as a CreateTopic's do
// (TestLoggerMayCallTheBrokerOnLogCreated): the handler may call
// an admin method on them. Kills the mutant that opens the new
// partitions with the plain log options (their lines were handed on
// under the token: the handler's CreateTopic blocked until
// callBounded gave up).
func TestLoggerMayCallTheBrokerOnACreatedPartitionsLine(t *testing.T) {
	ctx := context.Background()
	var b *Broker
	var callErr atomic.Pointer[error]
	h := onceOnLine("log created", func() {
		err := b.CreateTopic(ctx, "logs", log.TopicConfig{Partitions: 1})
		callErr.Store(&err)
	})
	b = open(t, Config{Logger: h.logger()})
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	h.armed.Store(true) // the next "log created": partition 1's
	require.NoError(t, b.CreatePartitions(ctx, "t", 2))
	require.True(t, h.seen.Load(), "no \"log created\" line from CreatePartitions")
	require.True(t, h.returned.Load(), "CreateTopic from the handler of a created partition's line blocked")
	require.NoError(t, *callErr.Load())
}
