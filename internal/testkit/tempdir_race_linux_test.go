package testkit

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLockedTempDirRacesReclaim: a directory lockedTempDir returns is
// there, and locked, however the reclaims of other processes (two
// goroutines here, each reclaimShm looping over the same root) run
// against it, and the reclaims never remove a directory whose lock is
// held: each one returned is checked after they have run over it.
//
//   - As of now, no reclaim takes a directory lockedTempDir has made and
//     not yet locked (younger than shmYoung): no try is lost. Reclaims
//     that looped so took each of its three directories before it locked
//     one (and FastTempDir then took t.TempDir()).
//   - As of shmYoung later (as if this process stalled that long between
//     the directory's making and its lock), a reclaim that takes the lock
//     first removes it, and lockedTempDir, which then finds its path
//     gone, makes another. Without that check it returned a removed
//     directory (TestReclaimShm, which does not race, passed so). Here a
//     try given up is counted, not failed.
func TestLockedTempDirRacesReclaim(t *testing.T) {
	for _, stalled := range []bool{false, true} {
		t.Run(fmt.Sprint("stalled=", stalled), func(t *testing.T) {
			now := time.Now
			if stalled {
				now = func() time.Time { return time.Now().Add(shmYoung + time.Second) }
			}
			locked, gaveUp := raceReclaims(t, now)
			t.Logf("%d directories locked, %d tries given up", locked, gaveUp)
			if !stalled && gaveUp > 0 {
				t.Fatalf("%d of lockedTempDir's directories taken by reclaims before they were locked", gaveUp)
			}
		})
	}
}

// raceReclaims runs lockedTempDir while two goroutines run reclaimShm,
// as of now(), over the same root, and returns how many directories it
// locked and how many tries it gave up.
func raceReclaims(t *testing.T, now func() time.Time) (locked, gaveUp int) {
	root := t.TempDir()
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				reclaimShm(root, now())
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
	for i, dir := range dirs {
		if !samePath(held[i], dir) {
			t.Fatalf("%s, locked, was removed by a reclaim", dir)
		}
	}
	return len(dirs), gaveUp
}
