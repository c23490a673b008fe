package main

import "syscall"

// childAttr puts a child in its own process group, so a Ctrl-C reaches only
// the bench, which stops its children in order, and has the kernel kill the
// child should the bench itself die without cleaning up.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
