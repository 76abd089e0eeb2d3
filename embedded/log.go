package embedded

import "os"

// logWriter forwards to os.Stderr at write time, so tests that swap os.Stderr see it.
type logWriter struct{}

func (logWriter) Write(p []byte) (int, error) { return os.Stderr.Write(p) }
