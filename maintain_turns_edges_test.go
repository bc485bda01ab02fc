package runnel

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/log"
	"github.com/runnel/runnel/vfs"
	"github.com/stretchr/testify/require"
)

// TestMaintainCutShortWaitingForItsFirstPartitionBeginsWithIt: a call
// cut short while it waits for the maintenance token before its first
// partition (another maintenance holds it) never began that partition:
// the next call begins with it, not past it, as past a first partition
// whose maintenance began and outlasted the call's time.
func TestMaintainCutShortWaitingForItsFirstPartitionBeginsWithIt(t *testing.T) {
	b := turnsBroker(t, "a", "b")
	require.Equal(t, []string{"a-0", "a-1"}, maintainCut(t, b, 2)) // the place is a-1
	b.maint <- struct{}{}                                          // another maintenance is under way
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testHookMaintainWaits = cancel
	err := b.Maintain(ctx)
	testHookMaintainWaits = nil
	<-b.maint
	require.ErrorIs(t, err, context.Canceled)
	require.Equal(t, []string{"a-1"}, maintainCut(t, b, 1), "a-1's maintenance never began: the next call begins with it")
	require.Equal(t, []string{"b-0"}, maintainCut(t, b, 1), "a-1's began: the next call goes past it")
}

// TestMaintainFailingNotCutShortKeepsThePlace: a call that ctx does not
// cut short leaves the place where it was, also when a partition's
// maintenance fails: the next call cut short begins where it would have.
func TestMaintainFailingNotCutShortKeepsThePlace(t *testing.T) {
	var failing atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate && failing.Load() && strings.Contains(filepath.ToSlash(name), "/a-1/") {
			return vfs.ErrInjected // no room for a-1's checkpoints
		}
		return nil
	}))
	b := turnsBrokerWith(t, Config{FS: fsys, Dir: "/data", MaintenanceInterval: time.Hour}, "a", "b")
	failing.Store(true)
	require.ErrorIs(t, b.Maintain(context.Background()), vfs.ErrInjected, "a-1's retention fails")
	failing.Store(false)
	require.Equal(t, []string{"a-0"}, maintainCut(t, b, 1), "no call was cut short: the first partition")
}

// TestMaintainCutShortReopeningItsFirstPartitionGoesPastIt: a call cut
// short on its first partition while it retries that partition's failed
// reopen (which then fails) goes past it, as past any first partition
// whose maintenance began: a partition whose reopen fails at every call
// holds up no other.
func TestMaintainCutShortReopeningItsFirstPartitionGoesPastIt(t *testing.T) {
	var list atomic.Bool
	fsys := vfs.WithFaults(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, name string) error {
		if op == vfs.OpList && list.Load() && filepath.ToSlash(name) == "/data/a-0" {
			return vfs.ErrInjected // a-0's reopen fails
		}
		return nil
	}))
	b := turnsBrokerWith(t, Config{FS: fsys, Dir: "/data", MaintenanceInterval: time.Hour}, "a")
	list.Store(true)
	require.ErrorIs(t, b.UpdateTopicConfig(context.Background(), "a", func(c *log.Config) { c.MaxMessageBytes = 2 << 20 }), vfs.ErrInjected)
	require.Equal(t, []string{"a-0"}, maintainCut(t, b, 1))
	require.Equal(t, []string{"a-1"}, maintainCut(t, b, 1), "a-0's reopen was tried: the next call goes past it")
}
