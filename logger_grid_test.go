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

// lineGridFaults are the faults a scenario of TestLoggerHandlerGrid
// turns on: fsyncs of .log files fail, or the partition's directory
// cannot be listed (its open fails).
type lineGridFaults struct{ sync, list atomic.Bool }

// lineGridScenario makes one kind of line reach the handler: setup
// readies the broker (the handler not armed yet), provoke makes the
// line. not lists the actions Config.Logger forbids on the line.
type lineGridScenario struct {
	name    string
	line    string
	topic   log.TopicConfig
	setup   func(t *testing.T, b *Broker, f *lineGridFaults, clock *stepClock)
	provoke func(b *Broker) error
	// autoCreate: the broker creates topics a client names.
	autoCreate bool
}

// tolerated is err, but nil for the errors a call from a handler may
// rightly get in TestLoggerHandlerGrid's scenarios: the line's partition
// fenced ("log fenced"), or refusing its reopen, the topic gone, and
// those of also.
func tolerated(err error, also ...error) error {
	for _, ok := range append([]error{log.ErrLogFenced, ErrUnknownTopic, vfs.ErrInjected}, also...) {
		if errors.Is(err, ok) {
			return nil
		}
	}
	return err
}

// TestLoggerHandlerGrid: for each kind of line a broker's Logger gets
// (a Produce's roll, the maintenance's retention, compaction and expired
// producer ids, a CreateTopic's "log created", an auto-created topic, a
// config change's reopen,
// an fsync's "log fenced", the maintenance's retry of a failed reopen),
// a handler that does, from inside the handler, what Config.Logger says
// it may (produce to the line's partition, CreateTopic, Maintain,
// DeleteTopic of the line's topic, Close; and the other admin calls on
// the line's topic, UpdateTopicConfig, CreatePartitions and
// DeleteRecords of its partition, and the reads: Fetch, ListOffset by
// offset and by time, DescribeTopic, UnwritablePartitions, Partitions,
// Topics, InitProducerID) returns, and so does the call that logged the
// line; each wait bounded by testkit.HangGuard, to turn a deadlock into
// a failure. (Close is called from the handler of an explicit
// Maintain here; TestLoggerMayCloseOnMaintenanceLines calls it on
// the lines of the broker's own maintenance goroutine.)
func TestLoggerHandlerGrid(t *testing.T) {
	ctx := context.Background()
	produceTo := func(b *Broker, v string) error {
		_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: batch(t, v)})
		return err
	}
	scenarios := []lineGridScenario{{
		name: "roll", line: "rolled segment",
		topic:   log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100}},
		setup:   func(t *testing.T, b *Broker, _ *lineGridFaults, _ *stepClock) { produce(t, b, "t", 0, "a") },
		provoke: func(b *Broker) error { return produceTo(b, "b") },
	}, {
		name: "retention", line: "deleting segment",
		topic: log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, RetentionBytes: 1}},
		setup: func(t *testing.T, b *Broker, _ *lineGridFaults, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			produce(t, b, "t", 0, "b")
			produce(t, b, "t", 0, "c")
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "compaction", line: "compacted",
		topic: log.TopicConfig{Partitions: 1, Config: log.Config{SegmentBytes: 100, CleanupPolicy: log.Compact, MinCleanableDirtyRatio: -1}},
		setup: func(t *testing.T, b *Broker, _ *lineGridFaults, _ *stepClock) {
			for _, v := range []string{"1", "2", "3", "4"} {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: 0, Acks: api.AcksAll, Batches: keyed(t, "k", v)})
				require.NoError(t, err)
			}
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "producer ids expired", line: "producer ids expired",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, _ *lineGridFaults, clock *stepClock) {
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
		setup: func(t *testing.T, b *Broker, _ *lineGridFaults, _ *stepClock) { produce(t, b, "t", 0, "a") },
		provoke: func(b *Broker) error {
			return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 })
		},
	}, {
		name: "failed fsync", line: "log fenced",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, f *lineGridFaults, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			f.sync.Store(true)
		},
		provoke: func(b *Broker) error { return produceTo(b, "b") },
	}, {
		name: "reopen retried by Maintain", line: "log opened",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, f *lineGridFaults, _ *stepClock) {
			produce(t, b, "t", 0, "a")
			f.list.Store(true)
			require.ErrorIs(t, b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
			f.list.Store(false)
		},
		provoke: func(b *Broker) error { return b.Maintain(ctx) },
	}, {
		name: "partition reopened", line: "partition reopened",
		topic: log.TopicConfig{Partitions: 1},
		setup: func(t *testing.T, b *Broker, f *lineGridFaults, _ *stepClock) {
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
		// The other admin calls, and the reads and look-ups a handler
		// might make (the topic's state, its offsets), each of which
		// takes the admin token or the partition's lock.
		"UpdateTopicConfig": func(b *Broker) error {
			return tolerated(b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = max(c.MaxMessageBytes, 1<<20) + 1 }))
		},
		"CreatePartitions": func(b *Broker) error { return tolerated(b.CreatePartitions(ctx, "t", 3)) },
		"DeleteRecords": func(b *Broker) error {
			_, err := b.DeleteRecords(ctx, "t", 0, 1)
			// A compacted topic's; an empty partition's (offset 1 past it).
			return tolerated(err, ErrPolicyViolation, log.ErrOffsetOutOfRange)
		},
		"Fetch": func(b *Broker) error {
			resp, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0, MaxBytes: 1 << 20}}})
			if err == nil {
				err = resp.Partitions[0].Err
			}
			return tolerated(err, log.ErrOffsetOutOfRange) // offset 0, retention's deleted
		},
		"ListOffset": func(b *Broker) error {
			_, err := b.ListOffset(ctx, "t", 0, api.Latest)
			if err == nil {
				_, err = b.ListOffset(ctx, "t", 0, 0) // a search by time
			}
			return tolerated(err)
		},
		"DescribeTopic": func(b *Broker) error {
			_ = b.Topics()
			_, err := b.DescribeTopic(ctx, "t")
			if err == nil {
				_, err = b.UnwritablePartitions(ctx, "t")
			}
			if err == nil {
				_, err = b.Partitions(ctx, "t")
			}
			return tolerated(err)
		},
		"InitProducerID": func(b *Broker) error {
			_, _, err := b.InitProducerID(ctx)
			return err
		},
	}
	for _, sc := range scenarios {
		for name, action := range actions {
			t.Run(sc.name+"/"+name, func(t *testing.T) {
				faults := &lineGridFaults{}
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

// adminLineGridFaults are the faults a scenario of
// TestLoggerAdminLineGrid turns on, for partition 0 of topic t:
// snapshot removals fail, the directory cannot be listed (an open
// fails).
type adminLineGridFaults struct{ remove, list atomic.Bool }

// TestLoggerAdminLineGrid: for each kind of line an admin call
// that closes logs makes (a config change's reopen: the old log's Close
// failing to prune a snapshot, the new log's "log opened", a reopen
// whose open fails after a Close line), on a topic
// of two partitions, a handler that calls, from inside the handler,
// Produce to each partition, CreateTopic, DescribeTopic, Fetch,
// Maintain, UpdateTopicConfig, DeleteTopic of the line's topic, or
// Close, returns, and so does the admin call that logged the line; each
// wait bounded by testkit.HangGuard to turn a deadlock into a failure.
func TestLoggerAdminLineGrid(t *testing.T) {
	ctx := context.Background()
	change := func(b *Broker) error {
		err := b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.MaxMessageBytes = max(c.MaxMessageBytes, 1<<20) + 1 })
		if errors.Is(err, vfs.ErrInjected) || errors.Is(err, log.ErrLogFenced) {
			return nil
		}
		return err
	}
	noPrune := func(f *adminLineGridFaults) { f.remove.Store(true) }
	scenarios := []struct {
		name, line string
		early, arm func(f *adminLineGridFaults) // before the records are produced; before the call
		provoke    func(b *Broker) error
	}{
		{"a reopen's snapshot not pruned", "producer-state snapshot not removed",
			noPrune, noPrune, change},
		{"a reopen's failed open", "producer-state snapshot not removed",
			noPrune, func(f *adminLineGridFaults) { f.remove.Store(true); f.list.Store(true) }, change},
		{"a reopen's new log", "log opened",
			func(*adminLineGridFaults) {}, func(*adminLineGridFaults) {}, change},
	}
	tolerate := func(err error) error {
		for _, ok := range []error{ErrUnknownTopic, ErrTopicExists, ErrClosed, log.ErrLogFenced, log.ErrClosed, vfs.ErrInjected} {
			if errors.Is(err, ok) {
				return nil
			}
		}
		return err
	}
	actions := map[string]func(b *Broker) error{
		"Produce": func(b *Broker) error {
			for p := range int32(2) {
				if _, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: batch(t, "h")}); tolerate(err) != nil {
					return err
				}
			}
			return nil
		},
		"CreateTopic": func(b *Broker) error {
			return tolerate(b.CreateTopic(ctx, "other", log.TopicConfig{Partitions: 1}))
		},
		"DescribeTopic": func(b *Broker) error {
			_, err := b.DescribeTopic(ctx, "t")
			return tolerate(err)
		},
		"Fetch": func(b *Broker) error {
			_, err := b.Fetch(ctx, &api.FetchRequest{MaxBytes: 1 << 20, Partitions: []api.FetchPartition{{Topic: "t", Partition: 0, MaxBytes: 1 << 20}, {Topic: "t", Partition: 1, MaxBytes: 1 << 20}}})
			return tolerate(err)
		},
		"Maintain":          func(b *Broker) error { return tolerate(b.Maintain(ctx)) },
		"UpdateTopicConfig": func(b *Broker) error { return tolerate(change(b)) },
		"DeleteTopic":       func(b *Broker) error { return tolerate(b.DeleteTopic(ctx, "t")) },
		"Close":             func(b *Broker) error { return b.Close() },
	}
	for _, sc := range scenarios {
		for name, action := range actions {
			t.Run(sc.name+"/"+name, func(t *testing.T) {
				faults := &adminLineGridFaults{}
				fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
					path = filepath.ToSlash(path)
					in0 := strings.HasPrefix(path, "/data/t-0/")
					switch {
					case op == vfs.OpRemove && faults.remove.Load() && in0 && strings.HasSuffix(path, ".snapshot"),
						op == vfs.OpList && faults.list.Load() && path == "/data/t-0":
						return vfs.ErrInjected
					}
					return nil
				}))
				var b *Broker
				var actionErr atomic.Pointer[error]
				h := onceOnLine(sc.line, func() {
					err := action(b)
					actionErr.Store(&err)
				})
				b = open(t, Config{Dir: "/data", FS: fsys, Logger: h.logger()})
				require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 2, Config: log.Config{SegmentBytes: 100}}))
				sc.early(faults)
				for _, v := range []string{"a", "b", "c", "d", "e"} {
					produce(t, b, "t", 0, v) // each rolls, and snapshots
					produce(t, b, "t", 1, v)
				}
				h.armed.Store(true)
				sc.arm(faults)
				var provoked error
				require.True(t, callBounded(func() { provoked = sc.provoke(b) }), "the call that logged %q did not return", sc.line)
				require.True(t, h.seen.Load(), "no %q line (the call: %v)", sc.line, provoked)
				require.NoError(t, provoked)
				require.True(t, h.returned.Load(), "%s from the handler of %q blocked", name, sc.line)
				if p := actionErr.Load(); p != nil {
					require.NoError(t, *p, "%s from the handler of %q", name, sc.line)
				}
				faults.remove.Store(false)
				faults.list.Store(false)
				if name != "Close" && name != "DeleteTopic" {
					produce(t, b, "t", 1, "after") // partition 1 serves
				}
			})
		}
	}
}
