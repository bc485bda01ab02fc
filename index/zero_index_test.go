package index

import (
	"errors"
	"io/fs"
	"testing"
)

// A zero OffsetIndex or TimeIndex (one not made by OpenOffset or
// OpenTime) is closed, as a closed index is: its writes and syncs answer
// an error matching fs.ErrClosed, its Close nil, and none panics. Its
// Append answered ErrSealed, its Seal nil, and its Unseal, TruncateTo,
// Reset and Sync panicked on the nil file.
func TestZeroIndexIsClosed(t *testing.T) {
	type index interface {
		Seal() error
		Unseal(maxBytes int) error
		TruncateTo(offset int64) error
		Reset() error
		Sync() error
		Close() error
		Discard() error
		Entries() int
		Full() bool
	}
	for _, tc := range []struct {
		name string
		x    index
	}{
		{"OffsetIndex", &OffsetIndex{}},
		{"TimeIndex", &TimeIndex{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := tc.x
			appendOne := func() error {
				switch x := x.(type) {
				case *OffsetIndex:
					return x.Append(1, 10)
				case *TimeIndex:
					return x.Append(1, 1)
				}
				return nil
			}
			calls := []struct {
				name string
				call func() error
			}{
				{"Append", appendOne},
				{"Seal", x.Seal},
				{"Unseal", func() error { return x.Unseal(1024) }},
				{"TruncateTo", func() error { return x.TruncateTo(0) }},
				{"Reset", x.Reset},
				{"Sync", x.Sync},
			}
			for _, c := range calls {
				err := noPanic(t, c.name, c.call)
				if !errors.Is(err, fs.ErrClosed) {
					t.Errorf("%s of a zero %s: %v, want an error matching fs.ErrClosed", c.name, tc.name, err)
				}
			}
			if n := x.Entries(); n != 0 {
				t.Errorf("Entries: %d", n)
			}
			if !x.Full() {
				t.Error("a zero index takes entries (Full false)")
			}
			for _, c := range []struct {
				name string
				call func() error
			}{{"Close", x.Close}, {"Discard", x.Discard}, {"Close again", x.Close}} {
				if err := noPanic(t, c.name, c.call); err != nil {
					t.Errorf("%s: %v", c.name, err)
				}
			}
		})
	}
}

// noPanic calls f, failing the test if it panics.
func noPanic(t *testing.T, name string, f func() error) (err error) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Errorf("%s panicked: %v", name, p)
			err = nil
		}
	}()
	return f()
}
