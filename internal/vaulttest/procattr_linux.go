package vaulttest

import "syscall"

// sysProcAttr makes the kernel send vaultdev SIGTERM when the test process
// dies without stopping it (a crash, a test timeout, SIGKILL), so that no
// orphaned server outlives the test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
