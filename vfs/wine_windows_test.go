//go:build windows

package vfs

import "golang.org/x/sys/windows"

// onWine reports whether the tests run under Wine rather than Windows
// (Wine's ntdll.dll exports wine_get_version), for the few checks in which
// Wine, running on a Linux file system, answers otherwise than Windows
// does (see .ci/windows-wine).
func onWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}
