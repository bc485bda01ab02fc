package e2e

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func TestFirstError(t *testing.T) {
	var f FirstError
	f.Set(nil)
	if err := f.Err(); err != nil {
		t.Fatalf("after Set(nil): %v", err)
	}
	first, second := errors.New("first"), errors.New("second")
	f.Set(first)
	f.Set(nil)
	f.Set(second)
	if err := f.Err(); err != first {
		t.Fatalf("Err() = %v, want %v", err, first)
	}
}

// TestFirstErrorConcurrent: of errors set concurrently, exactly one of
// them is kept (run with -race).
func TestFirstErrorConcurrent(t *testing.T) {
	var f FirstError
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range errs {
		errs[i] = fmt.Errorf("error %d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Set(nil)
			f.Set(errs[i])
			_ = f.Err()
		}()
	}
	wg.Wait()
	got := f.Err()
	kept := 0
	for _, err := range errs {
		if err == got {
			kept++
		}
	}
	if kept != 1 {
		t.Fatalf("Err() = %v, not one of the errors set", got)
	}
}
