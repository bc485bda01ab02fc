package e2e

import "sync"

// FirstError keeps the first non-nil error it is given, for a Producer
// whose delivery errors arrive in callbacks and are reported by Flush. It
// is safe for concurrent use; the zero value holds no error.
type FirstError struct {
	mu  sync.Mutex
	err error
}

// Set keeps err if it is the first non-nil error given. It is called for
// every record, so it inlines, and nil costs a comparison: no lock, no
// call.
func (f *FirstError) Set(err error) {
	if err != nil {
		f.set(err)
	}
}

func (f *FirstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

// Err returns the first non-nil error given to Set, or nil.
func (f *FirstError) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
