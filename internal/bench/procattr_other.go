//go:build !linux

package main

import "syscall"

// childAttr: only Linux can tie a child's life to the bench's; elsewhere
// the bench's deferred stops are the only cleanup.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
