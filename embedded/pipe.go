package embedded

import (
	"io"
	"sync"
)

// pipeSize bounds what one response holds between the handler and the caller.
const pipeSize = 256 << 10

var pipeBuffers = sync.Pool{New: func() any { b := make([]byte, pipeSize); return &b }}

// bufPipe is a pipe with a small bounded buffer: the reader gets whatever the writer has
// written so far (nothing waits for the buffer to fill), and a reader slower than the
// writer takes many writes in one read, so fewer, larger hand-offs and socket writes.
type bufPipe struct {
	mu       sync.Mutex
	readable sync.Cond
	writable sync.Cond
	buf      *[]byte // ring buffer, taken from pipeBuffers on first write
	start, n int
	werr     error // set when the writer closes: io.EOF or why it failed
	rclosed  bool
}

func newBufPipe() *bufPipe {
	p := &bufPipe{}
	p.readable.L = &p.mu
	p.writable.L = &p.mu
	return p
}

// Write copies b into the pipe, waiting for room; it fails once either side is closed.
func (p *bufPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.buf != nil && p.n == pipeSize && !p.rclosed && p.werr == nil {
			p.writable.Wait()
		}
		if p.rclosed || p.werr != nil {
			return written, io.ErrClosedPipe
		}
		if p.buf == nil {
			p.buf = pipeBuffers.Get().(*[]byte)
		}
		buf := *p.buf
		end := (p.start + p.n) % pipeSize
		room := pipeSize - p.n
		if end+room > pipeSize {
			room = pipeSize - end
		}
		c := copy(buf[end:end+room], b)
		p.n += c
		b = b[c:]
		written += c
		p.readable.Signal()
	}
	return written, nil
}

// Read takes what the pipe holds, waiting while it is empty. After CloseWrite(io.EOF) it
// drains the pipe, then returns io.EOF; after CloseWrite(err) it returns err at once.
func (p *bufPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && p.werr == nil && !p.rclosed {
		p.readable.Wait()
	}
	switch {
	case p.rclosed:
		return 0, io.ErrClosedPipe
	case p.werr != nil && p.werr != io.EOF:
		p.release()
		return 0, p.werr
	case p.n == 0:
		p.release()
		return 0, p.werr
	}
	buf := *p.buf
	read := 0
	for p.n > 0 && len(b) > 0 {
		chunk := min(p.n, pipeSize-p.start)
		c := copy(b, buf[p.start:p.start+chunk])
		p.start = (p.start + c) % pipeSize
		p.n -= c
		b = b[c:]
		read += c
	}
	if p.n == 0 {
		p.start = 0
	}
	p.writable.Signal()
	return read, nil
}

// CloseWrite ends the stream with err (io.EOF for a complete one); the first call wins.
func (p *bufPipe) CloseWrite(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.werr == nil {
		p.werr = err
	}
	p.readable.Broadcast()
	p.writable.Broadcast()
}

// CloseRead stops the reader: the writer's next write fails.
func (p *bufPipe) CloseRead() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rclosed = true
	p.release()
	p.readable.Broadcast()
	p.writable.Broadcast()
}

// release returns the buffer to the pool once nobody can use it. Called with mu held.
func (p *bufPipe) release() {
	if p.buf != nil && (p.rclosed || p.werr != nil) {
		pipeBuffers.Put(p.buf)
		p.buf = nil
		p.n = 0
	}
}
