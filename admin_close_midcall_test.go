package runnel_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel"
	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/record"
	"github.com/runnel/runnel/runneltest"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// gate is a vfs.Injector that, once armed, holds the first operation whose
// file name begins with prefix (and whose kind is op, unless op is -1)
// until it is released: a point inside an admin call's file work.
type gate struct {
	armed   atomic.Bool
	prefix  string
	op      vfs.Op
	once    sync.Once
	reached chan struct{}
	release chan struct{}
}

func newGate(prefix string, op vfs.Op) *gate {
	return &gate{prefix: filepath.FromSlash(prefix), op: op, reached: make(chan struct{}), release: make(chan struct{})}
}

func (g *gate) MaybeError(op vfs.Op, name string) error {
	if !g.armed.Load() || (g.op >= 0 && op != g.op) || !strings.HasPrefix(name, g.prefix) {
		return nil
	}
	held := false
	g.once.Do(func() { held = true })
	if held {
		close(g.reached)
		<-g.release
	}
	return nil
}

// TestCloseInsideAnAdminCall: Close comes while an admin call is in the
// middle of its file work (held there by the file system), then the
// broker opens again on the same directory. The call returns nil or
// ErrClosed, and the next Open finds its effect whole when it returned
// nil and not at all when it returned ErrClosed; meanwhile the calls made
// after Close began answer ErrClosed; nothing acknowledged before is lost,
// and no goroutine is left.
//
//   - UpdateTopicConfig held in the reopen of partition 1 of 3: it
//     finishes every partition (Close waits for it), and every partition
//     runs with the new config after the reopen (a LogAppendTime topic
//     stamps the records produced then);
//   - CreatePartitions held in the first of the 2 partitions it adds:
//     ErrClosed (it stops before the second), and the topic has its old
//     count, and its partition directories only;
//   - CreateTopic held in its first partition's open: ErrClosed, and no
//     topic nor directory;
//   - DeleteTopic held in the removal of partition 1's directory: it
//     finishes, and the topic and its directories are gone;
//   - an auto-create by Produce held in its first partition's open:
//     ErrClosed, and no topic.
func TestCloseInsideAnAdminCall(t *testing.T) {
	type check func(t *testing.T, b *runnel.Broker, callErr error)
	cases := []struct {
		name   string
		prefix string
		op     vfs.Op
		call   func(ctx context.Context, b *runnel.Broker) error
		check  check
	}{
		{
			name: "UpdateTopicConfig", prefix: "/d/t-1/", op: -1,
			call: func(ctx context.Context, b *runnel.Broker) error {
				return b.UpdateTopicConfig(ctx, "t", func(c *log.Config) { c.TimestampType = log.LogAppendTime })
			},
			check: func(t *testing.T, b *runnel.Broker, callErr error) {
				require.NoError(t, callErr, "Close waits for the call")
				info, err := b.DescribeTopic(context.Background(), "t")
				require.NoError(t, err)
				require.Equal(t, log.LogAppendTime, info.Overrides.TimestampType)
				for p := range int32(3) {
					resp, err := b.Produce(context.Background(), &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: closeMidBatch(t, "after")})
					require.NoError(t, err)
					require.Positive(t, resp.LogAppendTime, "partition %d runs with the new config", p)
				}
			},
		},
		{
			name: "CreatePartitions", prefix: "/d/t-3", op: vfs.OpList,
			call: func(ctx context.Context, b *runnel.Broker) error { return b.CreatePartitions(ctx, "t", 5) },
			check: func(t *testing.T, b *runnel.Broker, callErr error) {
				require.ErrorIs(t, callErr, runnel.ErrClosed)
				info, err := b.DescribeTopic(context.Background(), "t")
				require.NoError(t, err)
				require.Len(t, info.Partitions, 3)
			},
		},
		{
			name: "CreateTopic", prefix: "/d/u-0", op: vfs.OpStat,
			call: func(ctx context.Context, b *runnel.Broker) error {
				return b.CreateTopic(ctx, "u", log.TopicConfig{Partitions: 2})
			},
			check: func(t *testing.T, b *runnel.Broker, callErr error) {
				require.ErrorIs(t, callErr, runnel.ErrClosed)
				require.Equal(t, []string{"t"}, b.Topics())
			},
		},
		{
			name: "DeleteTopic", prefix: "/d/t-1", op: vfs.OpRemove,
			call: func(ctx context.Context, b *runnel.Broker) error { return b.DeleteTopic(ctx, "t") },
			check: func(t *testing.T, b *runnel.Broker, callErr error) {
				require.NoError(t, callErr, "Close waits for the call")
				require.Empty(t, b.Topics())
			},
		},
		{
			name: "auto-create", prefix: "/d/auto-0", op: vfs.OpStat,
			call: func(ctx context.Context, b *runnel.Broker) error {
				_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "auto", Acks: api.AcksAll, Batches: closeMidBatch(t, "auto")})
				return err
			},
			check: func(t *testing.T, b *runnel.Broker, callErr error) {
				require.ErrorIs(t, callErr, runnel.ErrClosed)
				require.Equal(t, []string{"t"}, b.Topics())
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			ctx := context.Background()
			mem := vfs.NewMem()
			g := newGate(c.prefix, c.op)
			cfg := runnel.Config{FS: vfs.WithFaults(mem, g), Dir: "/d", AutoCreateTopics: true, DefaultPartitions: 2}
			b, err := runnel.Open(cfg)
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 3}))
			acked := map[int32][]string{}
			for p := range int32(3) {
				for i := range 3 {
					v := fmt.Sprintf("%d-%d", p, i)
					_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Partition: p, Acks: api.AcksAll, Batches: closeMidBatch(t, v)})
					require.NoError(t, err)
					acked[p] = append(acked[p], v)
				}
			}

			g.armed.Store(true)
			callErr := make(chan error, 1)
			go func() { callErr <- c.call(ctx, b) }()
			testkit.AwaitHold(t, g.reached, callErr, c.name)
			closeErr := make(chan error, 1)
			go func() { closeErr <- b.Close() }()
			// Close has begun once the broker has no topics to tell.
			testkit.SpinUntil(t, func() bool { return b.Topics() == nil }, "Close did not begin")
			// Calls made meanwhile are refused, as closed.
			_, err = b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: closeMidBatch(t, "late")})
			require.ErrorIs(t, err, runnel.ErrClosed)
			_, err = b.DescribeTopic(ctx, "t")
			require.ErrorIs(t, err, runnel.ErrClosed)
			require.ErrorIs(t, b.CreateTopic(ctx, "late", log.TopicConfig{Partitions: 1}), runnel.ErrClosed)
			require.ErrorIs(t, b.AlterTopicConfig(ctx, "t", log.Config{}), runnel.ErrClosed)
			close(g.release)
			res := testkit.Await(t, callErr, "the admin call's answer")
			require.NoError(t, testkit.Await(t, closeErr, "Close's answer"))
			require.True(t, res == nil || errors.Is(res, runnel.ErrClosed), "%v", res)

			g.armed.Store(false)
			b, err = runnel.Open(cfg)
			require.NoError(t, err)
			defer b.Close()
			c.check(t, b, res)
			// The directories are those of the topics there, no more.
			names, lerr := mem.List("/d")
			require.NoError(t, lerr)
			var want, dirs []string
			for _, name := range b.Topics() {
				info, err := b.DescribeTopic(ctx, name)
				require.NoError(t, err)
				for p := range info.Partitions {
					want = append(want, fmt.Sprintf("%s-%d", name, p))
				}
			}
			for _, n := range names {
				if strings.Contains(n, "-") {
					dirs = append(dirs, n)
				}
			}
			require.ElementsMatch(t, want, dirs)
			if slicesContain(b.Topics(), "t") {
				recs := runneltest.ConsumeAll(t, b, "t")
				for p, vs := range acked {
					var got []string
					for _, r := range recs {
						if r.Partition == p && !strings.HasPrefix(string(r.Value), "after") {
							got = append(got, string(r.Value))
						}
					}
					require.Equal(t, vs, got, "partition %d", p)
				}
			}
		})
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// closeMidBatch is a batch of one record whose value is v.
func closeMidBatch(t *testing.T, v string) []byte {
	t.Helper()
	var bl record.Builder
	bl.Reset()
	bl.Append(1, nil, []byte(v), nil)
	out, err := bl.AppendTo(nil, 0)
	require.NoError(t, err)
	return out
}

// TestCloseRacesAdmin: Close, on disk, at a random moment of an
// admin call (CreateTopic, DeleteTopic, CreatePartitions,
// UpdateTopicConfig) on another goroutine: the call succeeds, or fails
// with a typed error (ErrClosed when Close overtook it, ErrTopicExists or
// ErrUnknownTopic as without Close), and the next Open finds what the
// call's answer says: a topic created with its partitions, grown, or
// deleted when the call succeeded, the topics as they were when it failed,
// and a directory for each partition and no other (no half-created
// topic's).
func TestCloseRacesAdmin(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := runnel.Config{Dir: dir}
	rng := rand.New(rand.NewPCG(7, 33))
	b, err := runnel.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.CreateTopic(ctx, "a", log.TopicConfig{Partitions: 2})
	b.Close()
	counts := map[string]int{}
	for iter := range 300 {
		b, err := runnel.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		before := map[string]int{}
		for _, n := range b.Topics() {
			info, _ := b.DescribeTopic(ctx, n)
			before[n] = len(info.Partitions)
		}
		op := rng.IntN(4)
		name := []string{"a", "b"}[rng.IntN(2)]
		n := 1 + rng.IntN(6)
		seg := int64(1000 + rng.IntN(1000))
		done := make(chan error, 1)
		go func() {
			switch op {
			case 0:
				done <- b.CreateTopic(ctx, name, log.TopicConfig{Partitions: n})
			case 1:
				done <- b.DeleteTopic(ctx, name)
			case 2:
				done <- b.CreatePartitions(ctx, name, before[name]+n)
			case 3:
				done <- b.UpdateTopicConfig(ctx, name, func(c *log.Config) { c.SegmentBytes = seg })
			}
		}()
		for range rng.IntN(200) {
			runtime.Gosched()
		}
		cerr := b.Close()
		err = testkit.Await(t, done, "the admin call's answer")
		if cerr != nil {
			t.Fatalf("close: %v", cerr)
		}
		b, err2 := runnel.Open(cfg)
		if err2 != nil {
			t.Fatal(err2)
		}
		after := map[string]int{}
		want := map[string]bool{}
		for _, tn := range b.Topics() {
			info, _ := b.DescribeTopic(ctx, tn)
			after[tn] = len(info.Partitions)
			for i := range info.Partitions {
				want[fmt.Sprintf("%s-%d", tn, i)] = true
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() && e.Name() != "topics" && !want[e.Name()] {
				t.Errorf("iter %d op %d %s: stray dir %s", iter, op, name, e.Name())
			}
		}
		switch {
		case errors.Is(err, runnel.ErrClosed):
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("iter %d op %d %s n %d: ErrClosed but %v -> %v", iter, op, name, n, before, after)
			}
		case err == nil:
			switch op {
			case 0:
				if after[name] != n {
					t.Errorf("create ok but %v", after)
				}
			case 1:
				if _, ok := after[name]; ok {
					t.Errorf("delete ok but %v", after)
				}
			case 2:
				if after[name] != before[name]+n {
					t.Errorf("grow ok but %v -> %v", before, after)
				}
			}
		case errors.Is(err, runnel.ErrTopicExists), errors.Is(err, runnel.ErrUnknownTopic):
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Errorf("iter %d: %v but %v -> %v", iter, err, before, after)
			}
		default:
			t.Errorf("iter %d op %d: %v", iter, op, err)
		}
		counts[fmt.Sprintf("op%d %v", op, errors.Is(err, runnel.ErrClosed))]++
		b.Close()
	}
	t.Log(counts) // how often Close overtook each call
}
