package runnel

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// review35Faults are the faults a scenario of TestReview35HandlerGrid
// turns on: fsyncs of .log files fail, or the partition's directory
// cannot be listed (its open fails).
type review35Faults struct{ sync, list atomic.Bool }

// review35Scenario makes one kind of line reach the handler: setup
// readies the broker (the handler not armed yet), provoke makes the
// line. not lists the actions Config.Logger forbids on the line.
type review35Scenario struct {
	name    string
	line    string
	topic   log.TopicConfig
	setup   func(t *testing.T, b *Broker, f *review35Faults, clock *stepClock)
	provoke func(b *Broker) error
	// autoCreate: the broker creates topics a client names.
	autoCreate bool
}

// TestReview35HandlerGrid: for each kind of line a broker's Logger gets
// (a Produce's roll, the maintenance's retention, compaction and expired
// producer ids, a CreateTopic's "log created", an auto-created topic, a
// config change's reopen,
// an fsync's "log fenced", the maintenance's retry of a failed reopen),
// a handler that does, from inside the handler, what Config.Logger says
// it may (produce to the line's partition, CreateTopic, Maintain,
// DeleteTopic of the line's topic, Close) returns, and so does the call
// that logged the line; each wait bounded at 10 s, to turn a deadlock
// into a failure. (Close is called from the handler of an explicit
// Maintain here; TestReview36LoggerMayCloseOnMaintenanceLines calls it on
// the lines of the broker's own maintenance goroutine.)
func TestReview35HandlerGrid(t *testing.T) {
	ctx := context.Background()
	produceTo := func(b *Broker, v string) error {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, v)})
		return err
	}
	scenarios := []review35Scenario{{
		name: "roll", line: "rolled segment",
		topic:   log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}},
		setup:   func(t *testing.T, b *Broker, _ *review35Faults, _ *stepClock) { produce(t, b, "t", 0, "a") },
		provoke: func(b *Broker) error { return produceTo(b, "b") },
	}, {
		name: "retention", line: "deleting segment",
		topic: log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, RetentionBytes: 1}},
		setup: func(t *testing.T, b *Broker, _ *review35Faults, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			produce(t, b, "t", 0, "b")
			produce(t, b, "t", 0, "c")
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "compaction", line: "compacted",
		topic: log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: -1}},
		setup: func(t *testing.T, b *Broker, _ *review35Faults, _ *stepClock) {
			for _, v := range []string{"1", "2", "3", "4"} {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: keyed(t, "k", v)})
				require.NoError(t, err)
			}
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "producer ids expired", line: "producer ids expired",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, _ *review35Faults, clock *stepClock) {
			idempotentSend(t, b, "t")() // its clock started at time.Now
			clock.ns.Add(int64(2 * time.Hour))
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "log created", line: "log created",
		provoke: func(b *Broker) error {
			return b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1})
		},
	}, {
		name: "auto-created topic", line: "auto-created topic", autoCreate: true,
		provoke: func(b *Broker) error { return produceTo(b, "a") },
	}, {
		name: "reopen by a config change", line: "log opened",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, _ *review35Faults, _ *stepClock) { produce(t, b, "t", 0, "a") },
		provoke: func(b *Broker) error {
			return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 })
		},
	}, {
		name: "failed fsync", line: "log fenced",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, f *review35Faults, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			f.sync.Store(true)
		},
		provoke: func(b *Broker) error { return produceTo(b, "b") },
	}, {
		name: "reopen retried by Maintain", line: "log opened",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, f *review35Faults, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			f.list.Store(true)
			require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
			f.list.Store(false)
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "partition reopened", line: "partition reopened",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, f *review35Faults, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			f.list.Store(true)
			require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
			f.list.Store(false)
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}}
	actions := map[string]func(b *Broker) error{
		"Produce": func(b *Broker) error {
			err := produceTo(b, "from the handler")
			if errors.Is(err, log.ErrLogFenced) || errors.Is(err, ErrClosed) || errors.Is(err, ErrUnknownTopic) {
				return nil
			}
			return err
		},
		"CreateTopic": func(b *Broker) error {
			err := b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1})
			if errors.Is(err, ErrTopicExists) {
				return nil
			}
			return err
		},
		"Maintain": func(b *Broker) error {
			if err := b.Maintain(ctx); err != nil && !errors.Is(err, log.ErrLogFenced) {
				return err
			}
			return nil
		},
		"DeleteTopic": func(b *Broker) error {
			if err := b.DeleteTopic(ctx, "t"); err != nil && !errors.Is(err, ErrUnknownTopic) {
				return err
			}
			return nil
		},
		"Close": func(b *Broker) error { return b.Close() },
	}
	for _, sc := range scenarios {
		for name, action := range actions {
			t.Run(sc.name+"/"+name, func(t *testing.T) {
				faults := &review35Faults{}
				fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
					if op == vfs.OpSync && faults.sync.Load() && strings.HasPrefix(filepath.ToSlash(path), "/data/t-0/") && strings.HasSuffix(path, ".log") ||
						op == vfs.OpList && faults.list.Load() && filepath.ToSlash(path) == "/data/t-0" {
						return vfs.ErrInjected
					}
					return nil
				}))
				clock := &stepClock{}
				clock.ns.Store(time.Now().UnixNano())
				var b *Broker
				var actionErr atomic.Pointer[error]
				h := onceOnLine(sc.line, func() {
					err := action(b)
					actionErr.Store(&err)
				})
				b = open(t, Config{Dir: "/data", FS: fsys, Clock: clock, ProducerIDExpiration: time.Hour, AutoCreateTopics: sc.autoCreate, DefaultPartitions: 1, Logger: h.logger()})
				if sc.topic.Partitions != 0 {
					require.NoError(t, b.CreateTopic(ctx, "t", sc.topic))
				}
				if sc.setup != nil {
					sc.setup(t, b, faults, clock)
				}
				h.armed.Store(true)
				var provoked error
				require.True(t, callBounded(func() { provoked = sc.provoke(b) }), "the call that logged %q did not return", sc.line)
				require.True(t, h.seen.Load(), "no %q line (the call: %v)", sc.line, provoked)
				require.True(t, h.returned.Load(), "%s from the handler of %q blocked", name, sc.line)
				if p := actionErr.Load(); p != nil {
					require.NoError(t, *p, "%s from the handler of %q", name, sc.line)
				}
			})
		}
	}
}
