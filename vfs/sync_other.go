//go:build !linux

package vfs

import "os"

// syncData makes f's data durable: os.File.Sync (F_FULLFSYNC on macOS).
func syncData(f *os.File) error { return f.Sync() }
