//go:build unix

package backend

import (
	"fmt"
	"io"
	"os/signal"
	"strconv"
	"syscall"
)

// GuardMain is the body of the guard process (see Config.Guard): it waits
// until its stdin closes, which happens when the supervisor stops the engine
// or dies in any way, even by SIGKILL, and then kills the engine's process
// group. args is the process group id. The supervisor's binary runs it from
// a hidden subcommand.
func GuardMain(args []string, stdin io.Reader) error {
	if len(args) != 1 {
		return fmt.Errorf("guard: want one process group id, got %q", args)
	}
	pgid, err := strconv.Atoi(args[0])
	if err != nil || pgid <= 1 {
		return fmt.Errorf("guard: bad process group id %q", args[0])
	}
	// A Ctrl-C on the terminal reaches the whole foreground group; the guard
	// must outlive the supervisor's own handling of it.
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	_, _ = io.Copy(io.Discard, stdin)
	killGroup(pgid)
	return nil
}
