package proxy

// WithSpliceReadBuffer sets the receive buffer the zero-copy blob path asks for on its
// upstream connections; -1 leaves the kernel's default. For benchmarks comparing them.
func WithSpliceReadBuffer(n int) Option { return func(s *settings) { s.spliceReadBuffer = n } }
