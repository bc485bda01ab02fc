package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runnel/runnel/api"
	"github.com/runnel/runnel/internal/testkit"
	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestAdminCallStopsOnceCloseBegins: an admin call that adds partitions
// stops between two of them from the moment Close marks the broker
// closed (when its other calls start answering ErrClosed), not only once
// Close has cancelled the broker's ctx a moment later: a CreatePartitions
// in the middle of its first new partition when Close begins adds none and
// answers ErrClosed, as its doc says. Before, it went on to the next
// partition, and succeeded, if it got there between the two steps of
// Close (TestCloseInsideAnAdminCall failed now and then under -race).
func TestAdminCallStopsOnceCloseBegins(t *testing.T) {
	ctx := context.Background()
	var (
		armed   sync.Once
		on      bool
		mu      sync.Mutex
		reached = make(chan struct{})
		release = make(chan struct{})
	)
	gate := vfs.InjectorFunc(func(op vfs.Op, name string) error {
		mu.Lock()
		hold := on && op == vfs.OpList && strings.HasPrefix(name, filepath.Join("/d", "t-1"))
		mu.Unlock()
		if hold {
			armed.Do(func() { close(reached); <-release })
		}
		return nil
	})
	b, err := Open(Config{FS: vfs.WithFaults(vfs.NewMem(), gate), Dir: "/d"})
	require.NoError(t, err)
	require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
	mu.Lock()
	on = true
	mu.Unlock()

	callErr := make(chan error, 1)
	go func() { callErr <- b.CreatePartitions(ctx, "t", 3) }()
	testkit.AwaitHold(t, reached, callErr, "CreatePartitions") // in partition 1's file work
	var res error
	testHookCloseMarked = func() {
		// Closed, not yet cancelled: the call finishes now.
		close(release)
		res = <-callErr
	}
	defer func() { testHookCloseMarked = nil }()
	require.NoError(t, b.Close())
	require.ErrorIs(t, res, ErrClosed, "it stops before partition 2")
}

// TestCloseBetweenTheLookAndTheTopicsAnswersClosed: a call that found the
// broker open, and reads its topics once Close has let go of them
// (release), answers ErrClosed, as a call made after Close does: a
// Produce's look-up (topic) does not tell of an unknown topic, and a
// Maintain does not find nothing to maintain and answer nil. The hook
// closes the broker between the call's look at closed and its read of
// the topics.
func TestCloseBetweenTheLookAndTheTopicsAnswersClosed(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(context.Context, *Broker) error
	}{
		{"Produce", func(ctx context.Context, b *Broker) error {
			_, err := b.Produce(ctx, &api.ProduceRequest{Topic: "t", Acks: api.AcksAll, Batches: batch(t, "v")})
			return err
		}},
		{"DescribeTopic", func(ctx context.Context, b *Broker) error {
			_, err := b.DescribeTopic(ctx, "t")
			return err
		}},
		{"Maintain", func(ctx context.Context, b *Broker) error { return b.Maintain(ctx) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			b, err := Open(Config{})
			require.NoError(t, err)
			require.NoError(t, b.CreateTopic(ctx, "t", log.TopicConfig{Partitions: 1}))
			var armed atomic.Bool
			armed.Store(true)
			closed := make(chan error, 1)
			testHookClosedLooked = func() {
				if armed.CompareAndSwap(true, false) {
					closed <- b.Close()
				}
			}
			defer func() { testHookClosedLooked = nil }()
			require.ErrorIs(t, tc.call(ctx, b), ErrClosed)
			require.NoError(t, testkit.Await(t, closed, "Close's answer"))
		})
	}
}
