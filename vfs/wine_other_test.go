//go:build !windows

package vfs

// onWine reports whether the tests run under Wine: never, off Windows.
func onWine() bool { return false }
