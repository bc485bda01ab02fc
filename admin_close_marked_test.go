package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

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
	<-reached // in partition 1's file work
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
