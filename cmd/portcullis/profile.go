package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
)

// profileEnv names a file to write a CPU profile of the whole command into (for
// "go tool pprof"), e.g. to see where a slow "mirror collect" spends its time.
const profileEnv = "PORTCULLIS_CPUPROFILE"

// startProfile starts the CPU profile $PORTCULLIS_CPUPROFILE asks for; the returned
// function ends it. A profile that cannot start is reported, and the command runs anyway.
func startProfile(stderr io.Writer) func() {
	path := os.Getenv(profileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis: %s: %v\n", profileEnv, err)
		if f != nil {
			f.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			fmt.Fprintf(stderr, "portcullis: %s: %v\n", profileEnv, err)
		}
	}
}
