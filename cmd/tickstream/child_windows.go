//go:build windows

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// detach puts the child in a process group of its own, so that the
// console's Ctrl-C reaches only this process, which stops the child.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// terminate stops the child: Windows cannot send another process SIGTERM.
func terminate(p *os.Process) error { return p.Kill() }
