package consumer_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The timing paths TestSynctestConsumerTimingModel does not reach: the
// waits of AssignTopic's retries and of a Records loop after a Poll's
// error, and the throttle of the logs of an error that goes on.

// notLeaderPartitions answers Partitions with api.ErrNotLeader n times,
// then as the broker does, and keeps the time of each call.
type notLeaderPartitions struct {
	*runnel.Broker
	mu    sync.Mutex
	n     int
	calls []time.Duration
	t0    time.Time
}

func (c *notLeaderPartitions) Partitions(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, time.Since(c.t0))
	if len(c.calls) <= c.n {
		return 0, api.ErrNotLeader
	}
	return c.Broker.Partitions(ctx, topic)
}

// AssignTopic's wait between retries is RetryBackoff whatever happens to
// the assignment meanwhile (an Assign, a Seek: changes that end a Poll's
// wait, not this one), and it ends at once, with ErrClosed or ctx's
// error, when Close comes or ctx ends.
func TestSynctestAssignTopicBackoff(t *testing.T) {
	t.Run("changes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cl := &notLeaderPartitions{Broker: bubbleBroker(t), n: 3, t0: time.Now()}
			c, err := consumer.New(cl, consumer.RetryBackoff(7*time.Second))
			require.NoError(t, err)
			defer c.Close()
			go func() {
				for _, at := range []time.Duration{3 * time.Second, 8 * time.Second, 15 * time.Second} {
					time.Sleep(time.Until(cl.t0.Add(at)))
					assert.NoError(t, c.Assign("other", 0, consumer.Start()))
					assert.NoError(t, c.Seek("other", 0, consumer.At(1)))
				}
			}()
			require.NoError(t, c.AssignTopic(t.Context(), "t", consumer.Start()))
			require.Equal(t, []time.Duration{0, 7 * time.Second, 14 * time.Second, 21 * time.Second}, cl.calls)
			require.Equal(t, []api.TopicPartition{{Topic: "other"}, {Topic: "t"}}, c.Assigned())
		})
	})
	t.Run("close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cl := &notLeaderPartitions{Broker: bubbleBroker(t), n: 100, t0: time.Now()}
			c, err := consumer.New(cl, consumer.RetryBackoff(7*time.Second))
			require.NoError(t, err)
			go func() {
				time.Sleep(10 * time.Second)
				assert.NoError(t, c.Close())
			}()
			require.ErrorIs(t, c.AssignTopic(t.Context(), "t", consumer.Start()), consumer.ErrClosed)
			require.Equal(t, cl.t0.Add(10*time.Second), time.Now())
			require.Equal(t, []time.Duration{0, 7 * time.Second}, cl.calls)
			require.Empty(t, c.Assigned())
		})
	})
	t.Run("ctx", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cl := &notLeaderPartitions{Broker: bubbleBroker(t), n: 100, t0: time.Now()}
			c, err := consumer.New(cl, consumer.RetryBackoff(7*time.Second))
			require.NoError(t, err)
			defer c.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			require.ErrorIs(t, c.AssignTopic(ctx, "t", consumer.Start()), context.DeadlineExceeded)
			require.Equal(t, cl.t0.Add(10*time.Second), time.Now())
			require.Equal(t, []time.Duration{0, 7 * time.Second}, cl.calls)
		})
	})
}

// A Records loop waits RetryBackoff after a Poll's error that it goes on
// after (one Kafka's table does not know); a Seek from another goroutine
// ends the wait, and the loop polls from the new position at once, as a
// seek kills a kgo source's backoff after a failed fetch (its session's
// ctx ends); and Close or the ctx ends it at once, the loop with it.
// (The wait ran its course through the Seek before.)
func TestSynctestRecordsBackoffEnds(t *testing.T) {
	errNet := errors.New("network down")
	for _, end := range []string{"close", "ctx"} {
		t.Run(end, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bubbleBroker(t)
				syncProduce(t, b, "a")
				f := runneltest.NewFaults(t, b)
				f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: errNet, Count: runneltest.Unlimited})
				c, err := consumer.New(f, consumer.RetryBackoff(300*time.Millisecond))
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.Assign("t", 0, consumer.Start()))
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				t0 := time.Now()
				go func() {
					time.Sleep(100 * time.Millisecond)
					assert.NoError(t, c.Seek("t", 0, consumer.At(0)))
					time.Sleep(350 * time.Millisecond)
					if end == "close" {
						assert.NoError(t, c.Close())
					} else {
						cancel()
					}
				}()
				var errs []time.Duration
				ended := false // ctx's error came, last
				for r, err := range c.Records(ctx) {
					require.Nil(t, r)
					require.False(t, ended, "an error after ctx's: %v", err)
					if ended = end == "ctx" && ctxEnd(ctx, err); ended {
						continue
					}
					require.ErrorIs(t, err, errNet)
					errs = append(errs, time.Since(t0))
				}
				require.Equal(t, end == "ctx", ended, "ctx's error yielded")
				// The Seek at 100 ms ends the first wait; the second runs
				// to 400 ms.
				require.Equal(t, []time.Duration{0, 100 * time.Millisecond, 400 * time.Millisecond}, errs)
				require.Equal(t, t0.Add(450*time.Millisecond), time.Now(), "the loop did not end at once")
			})
		})
	}
}

// A Seek, Assign or Resume from another goroutine during a Records
// loop's wait after a failed Poll (an error Kafka's table does not know,
// RetryBackoff an hour) takes effect at once: the loop polls again
// and yields the records from the new position at the change's time, not
// an hour later. Before, the loop slept the hour out.
func TestSynctestRecordsChangeEndsBackoff(t *testing.T) {
	errNet := errors.New("network down")
	for _, change := range []string{"seek", "assign", "resume"} {
		t.Run(change, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bubbleBroker(t)
				syncProduce(t, b, "a", "b", "c")
				f := runneltest.NewFaults(t, b)
				f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: errNet, Count: 1})
				c, err := consumer.New(f, consumer.RetryBackoff(time.Hour))
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.Assign("t", 0, consumer.At(0)))
				other := api.TopicPartition{Topic: "other"}
				if change == "resume" {
					require.NoError(t, c.Assign(other.Topic, 0, consumer.Start()))
					c.Pause(other)
				}
				t0 := time.Now()
				go func() {
					time.Sleep(time.Second)
					switch change {
					case "seek":
						assert.NoError(t, c.Seek("t", 0, consumer.At(1)))
					case "assign":
						assert.NoError(t, c.Assign("t", 0, consumer.At(1)))
					case "resume":
						c.Resume(other)
					}
				}()
				var vals []string
				var at []time.Duration
				for r, err := range c.Records(testCtx(t)) {
					if err != nil {
						require.ErrorIs(t, err, errNet)
						vals = append(vals, "err")
					} else {
						vals = append(vals, string(r.Value))
					}
					at = append(at, time.Since(t0))
					if len(vals) == 3 {
						break
					}
				}
				want := []string{"err", "b", "c"}
				if change == "resume" {
					want = []string{"err", "a", "b"} // the position stays
				}
				require.Equal(t, want, vals)
				require.Equal(t, []time.Duration{0, time.Second, time.Second}, at, "the change did not end the wait")
			})
		})
	}
}

// timedLogs keeps the level and fake time of each log of one message.
type timedLogs struct {
	msg string
	t0  time.Time
	mu  sync.Mutex
	got []string
}

func (h *timedLogs) Enabled(context.Context, slog.Level) bool { return true }
func (h *timedLogs) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *timedLogs) WithGroup(string) slog.Handler            { return h }
func (h *timedLogs) Handle(_ context.Context, r slog.Record) error {
	if r.Message != h.msg {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level != slog.LevelDebug {
		s := r.Level.String() + " at " + time.Since(h.t0).String()
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "failing" {
				s += " failing " + a.Value.String()
			}
			return true
		})
		h.got = append(h.got, s)
	}
	return nil
}

// A retriable error that goes on is logged at Info once, then at Warn
// every 30 s (with for how long it has been failing), at Debug between:
// a partition's error and a whole fetch's.
func TestSynctestStillFailingWarnEvery30s(t *testing.T) {
	for _, whole := range []bool{false, true} {
		msg := "partition error: retrying"
		if whole {
			msg = "fetch failed: retrying"
		}
		t.Run(msg, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := bubbleBroker(t)
				f := runneltest.NewFaults(t, b)
				fault := runneltest.Fault{Op: runneltest.OpFetch, Err: api.ErrNotLeader, Count: runneltest.Unlimited}
				if !whole {
					fault.Action = runneltest.FailPartitions
				}
				rule := f.Add(fault)
				logs := &timedLogs{msg: msg, t0: time.Now()}
				c, err := consumer.New(f, consumer.RetryBackoff(time.Second), consumer.Logger(slog.New(logs)))
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.Assign("t", 0, consumer.Start()))
				for time.Since(logs.t0) < 65*time.Second {
					_, err := c.Poll(t.Context())
					require.NoError(t, err)
				}
				require.Equal(t, 65, rule.Hits(), "a fetch each second, from 0 to 64 s")
				require.Equal(t, []string{"INFO at 0s", "WARN at 30s failing 30s", "WARN at 1m0s failing 1m0s"}, logs.got)
			})
		})
	}
}

// A change made after a Records loop's Poll failed but before the loop's
// RetryBackoff wait began — by another goroutine while the loop body
// handles the error, or by the body itself — ends that wait as one made
// during it does: the loop polls again at once, from the new position.
// Before, the wait took the changes as of its own start: such a change
// was lost, and the loop waited RetryBackoff (an hour here).
func TestSynctestRecordsChangeBeforeBackoff(t *testing.T) {
	for _, by := range []string{"other", "body"} {
		t.Run(by, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				errNet := errors.New("network down")
				b := bubbleBroker(t)
				syncProduce(t, b, "a", "b", "c")
				f := runneltest.NewFaults(t, b)
				f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: errNet, Count: 1})
				c, err := consumer.New(f, consumer.RetryBackoff(time.Hour))
				require.NoError(t, err)
				defer c.Close()
				require.NoError(t, c.Assign("t", 0, consumer.At(0)))
				t0 := time.Now()
				var vals []string
				var at []time.Duration
				for r, err := range c.Records(testCtx(t)) {
					if err != nil {
						require.ErrorIs(t, err, errNet)
						vals = append(vals, "err")
						if by == "body" {
							require.NoError(t, c.Seek("t", 0, consumer.At(1)))
						} else {
							seeked := make(chan struct{})
							go func() {
								defer close(seeked)
								assert.NoError(t, c.Seek("t", 0, consumer.At(1)))
							}()
							<-seeked
						}
					} else {
						vals = append(vals, string(r.Value))
					}
					at = append(at, time.Since(t0))
					if len(vals) == 3 {
						break
					}
				}
				require.Equal(t, []string{"err", "b", "c"}, vals)
				require.Equal(t, []time.Duration{0, 0, 0}, at, "the Seek made before the wait began was lost: the loop waited RetryBackoff")
			})
		})
	}
}

// A change ends one RetryBackoff wait only: the Poll after it fails again
// and the loop waits RetryBackoff anew (no busy loop), through a Pause of
// a partition already paused and an Unassign of one not assigned, which
// change nothing; a Pause and an Unassign of another partition end a wait
// each.
func TestSynctestRecordsChangeEndsOneBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errNet := errors.New("network down")
		b := bubbleBroker(t)
		syncProduce(t, b, "a")
		f := runneltest.NewFaults(t, b)
		f.Add(runneltest.Fault{Op: runneltest.OpFetch, Err: errNet, Count: runneltest.Unlimited})
		c, err := consumer.New(f, consumer.RetryBackoff(time.Hour))
		require.NoError(t, err)
		defer c.Close()
		other := api.TopicPartition{Topic: "other"}
		require.NoError(t, c.Assign("t", 0, consumer.At(0)))
		require.NoError(t, c.Assign(other.Topic, 0, consumer.At(0)))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		t0 := time.Now()
		go func() {
			time.Sleep(time.Second)
			c.Pause(other)
			time.Sleep(time.Second)
			c.Pause(other) // no change
			c.Unassign("none", 0)
			time.Sleep(time.Second)
			c.Unassign(other.Topic, 0)
			time.Sleep(150 * time.Minute)
			cancel()
		}()
		var errs []time.Duration
		for r, err := range c.Records(ctx) {
			require.Nil(t, r)
			if ctxEnd(ctx, err) {
				continue // the last
			}
			require.ErrorIs(t, err, errNet)
			errs = append(errs, time.Since(t0))
		}
		require.Equal(t, []time.Duration{0, time.Second, 3 * time.Second, time.Hour + 3*time.Second, 2*time.Hour + 3*time.Second}, errs)
		require.Equal(t, t0.Add(150*time.Minute+3*time.Second), time.Now(), "the ctx's end did not end the wait at once")
	})
}
