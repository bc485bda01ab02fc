package vfs

// Wrapper is implemented by an FS that passes its operations on to
// another FS, whose files it serves (adding faults, as WithFaults does, or
// counting or logging them). Unwrap returns that FS.
//
// State that belongs to the files themselves rather than to the FS value
// (what the page cache holds, say, which outlives any wrapper) is keyed by
// the FS under every wrapper (see Unwrap). So a new wrapper of the same FS
// is taken for the same file system.
//
// A wrapper that changes which files a name means (one that prefixes or
// folds names) is not a Wrapper.
type Wrapper interface {
	FS
	// Unwrap returns the FS this one passes its operations on to.
	Unwrap() FS
}

// maxUnwrap bounds the wrappers Unwrap looks through, should a Wrapper
// lead back to itself.
const maxUnwrap = 1000

// Unwrap returns the FS under fsys's wrappers: fsys itself if it is not a
// Wrapper, else Unwrap of what its Unwrap method returns (a Wrapper that
// returns nil counts as none). WithFaults's FS is a Wrapper of the FS it
// was given, so that Unwrap(WithFaults(m, inj)) is m.
func Unwrap(fsys FS) FS {
	for range maxUnwrap {
		w, ok := fsys.(Wrapper)
		if !ok {
			return fsys
		}
		inner := w.Unwrap()
		if inner == nil {
			return fsys
		}
		fsys = inner
	}
	return fsys
}
