package main

import (
	"fmt"
	"io"
)

// subcommand runs one command of a group and returns its exit status.
type subcommand func(args []string, stdout, stderr io.Writer) int

// dispatch runs the subcommand of group named by args[0], or prints help: to stdout when
// asked for (exit 0), to stderr with exit 2 when the command is missing or unknown.
func dispatch(group, help string, cmds map[string]subcommand, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return 2
	}
	if run, ok := cmds[args[0]]; ok {
		return run(args[1:], stdout, stderr)
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, help)
		return 0
	}
	fmt.Fprintf(stderr, "portcullis %s: unknown command %q\n\n%s", group, args[0], help)
	return 2
}
