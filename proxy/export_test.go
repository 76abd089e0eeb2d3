package proxy

// WithSpliceReadBuffer sets the receive buffer (SO_RCVBUF) the zero-copy blob path asks
// for on its upstream connections, instead of leaving the kernel's autotuning. For the
// benchmark that compares them.
func WithSpliceReadBuffer(n int) Option { return func(s *settings) { s.spliceReadBuffer = n } }
