package testkit

import (
	"sync"
	"testing"
)

// Loops runs functions over and over, each on a goroutine of its own,
// until Stop, which t's Cleanup calls too, so that a test that fails
// first leaves no loop running into the next tests.
type Loops struct {
	stop chan struct{}
	once sync.Once
	wg   sync.WaitGroup
}

// NewLoops returns Loops that t's Cleanup stops.
func NewLoops(t testing.TB) *Loops {
	l := &Loops{stop: make(chan struct{})}
	t.Cleanup(l.Stop)
	return l
}

// Go calls f(0), f(1), ... on a goroutine of its own until Stop.
func (l *Loops) Go(f func(i int)) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			f(i)
		}
	}()
}

// Stop ends the loops (each once its call under way returns) and waits
// for them. It may be called more than once.
func (l *Loops) Stop() {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
}
