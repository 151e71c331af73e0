//go:build !windows

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// detach puts the child in a process group of its own, so that the
// terminal's interrupt reaches only this process, which stops the child.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// terminate asks the child to shut down cleanly.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
