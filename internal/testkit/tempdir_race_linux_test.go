package testkit

import (
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestLockedTempDirRacesReclaim: a directory lockedTempDir returns is
// there, and locked, however the reclaims of other processes (two
// goroutines here, each reclaimShm looping over the same root) run
// against it: one that takes the lock of a directory made but not yet
// locked removes it, and lockedTempDir, which then finds its path gone,
// makes another. Without that check it returned a removed directory
// (TestReclaimShm, which does not race, passed so). The reclaims never
// remove a directory whose lock is held: each one returned is checked
// after they have run over it. Reclaims that loop so fast can take each
// of lockedTempDir's three directories before it locks one (FastTempDir
// then takes t.TempDir()): such a try is counted, not failed; a process
// reclaims once, at its first FastTempDir.
func TestLockedTempDirRacesReclaim(t *testing.T) {
	root := t.TempDir()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				reclaimShm(root)
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	n := 2000
	if testing.Short() {
		n = 500
	}
	var held []*os.File
	defer func() {
		for _, f := range held {
			f.Close()
		}
	}()
	var dirs []string
	gaveUp := 0
	for i := range n {
		dir, lock, err := lockedTempDir(root)
		if err != nil && strings.Contains(err.Error(), "were each removed before they could be locked") {
			gaveUp++
			continue
		}
		if err != nil {
			t.Fatalf("try %d: %v", i, err)
		}
		if !samePath(lock, dir) {
			t.Fatalf("try %d: lockedTempDir returned %s, which a reclaim removed", i, dir)
		}
		held, dirs = append(held, lock), append(dirs, dir)
	}
	stop.Store(true)
	wg.Wait()
	if len(dirs) == 0 {
		t.Fatalf("no directory made and locked in %d tries", n)
	}
	t.Logf("%d directories locked, %d tries given up", len(dirs), gaveUp)
	for i, dir := range dirs {
		if !samePath(held[i], dir) {
			t.Fatalf("%s, locked, was removed by a reclaim", dir)
		}
	}
}
