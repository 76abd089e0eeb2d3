package proxy

// WithSpliceReadBuffer sets the receive buffer (SO_RCVBUF) the zero-copy blob path asks
// for on its upstream connections, instead of leaving the kernel's autotuning. For the
// benchmark that compares them.
func WithSpliceReadBuffer(n int) Option { return func(s *settings) { s.spliceReadBuffer = n } }

// WithInProcessCoalescing gathers the in-process registry's 32 KiB body writes of large
// blob GETs into 256 KiB writes to the client. For the benchmark that compares them.
func WithInProcessCoalescing() Option { return func(s *settings) { s.coalesce = true } }
