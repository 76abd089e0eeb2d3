package embedded

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// responseWriter is the handler's side: headers go out on the first Write or Flush or
// when the handler returns; the body streams through a small bounded pipe.
type responseWriter struct {
	req      *http.Request // the caller's request, for Response.Request
	ended    func() error  // the handler context's Err: it ends with the caller's
	header   http.Header
	status   int
	sent     bool
	noBody   bool  // HEAD, 1xx, 204, 304
	declared int64 // Content-Length the handler set, or -1
	written  int64
	pipe     *bufPipe
	body     *pipeBody
	ready    chan struct{} // closed once resp or err is set
	resp     *http.Response
	err      error
}

// serve runs the handler, turning a panic into a failed exchange as a server does.
func (w *responseWriter) serve(h http.Handler, r *http.Request) {
	defer func() {
		p := recover()
		if p == nil {
			w.finish()
			return
		}
		err := fmt.Errorf("embedded registry: handler panicked: %v", p)
		if w.sent {
			w.pipe.CloseWrite(err)
			return
		}
		w.err = err
		w.pipe.CloseWrite(err)
		close(w.ready)
	}()
	h.ServeHTTP(w, r)
}

// finish completes the response once the handler has returned.
func (w *responseWriter) finish() {
	if !w.sent {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		if w.req.Method != http.MethodHead && bodyAllowed(w.status) && w.header.Get("Content-Length") == "" && w.header.Get("Transfer-Encoding") == "" {
			w.header.Set("Content-Length", "0")
		}
		w.send(nil)
	}
	if err := w.ended(); err != nil {
		w.pipe.CloseWrite(err) // the caller gave up: its reads fail, they do not see an end
		return
	}
	if w.declared >= 0 && w.written < w.declared && !w.noBody {
		w.pipe.CloseWrite(io.ErrUnexpectedEOF)
		return
	}
	w.pipe.CloseWrite(io.EOF)
}

// Header returns the header map the response will carry.
func (w *responseWriter) Header() http.Header { return w.header }

// WriteHeader sets the status; later calls are ignored, as net/http's server does.
func (w *responseWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.sent || w.status != 0 || code < 200 {
		return // 1xx informational answers are not relayed
	}
	w.status = code
}

// Write streams p to the caller, sending the headers first when needed.
func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.sent {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.send(p)
	}
	if w.noBody {
		return 0, http.ErrBodyNotAllowed
	}
	if err := w.ended(); err != nil {
		// The caller is gone (the pipe is being closed too, from another goroutine).
		return 0, err
	}
	var over bool
	if w.declared >= 0 && w.written+int64(len(p)) > w.declared {
		p, over = p[:w.declared-w.written], true
	}
	n, err := w.pipe.Write(p)
	w.written += int64(n)
	if err == nil && over {
		err = http.ErrContentLength
	}
	return n, err
}

// copyBuffers are the buffers ReadFrom copies through: fewer, larger hand-offs than the
// 32 KiB io.Copy would use.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// ReadFrom copies src to the response in large chunks.
func (w *responseWriter) ReadFrom(src io.Reader) (int64, error) {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	return io.CopyBuffer(writerOnly{w}, src, *bp)
}

// writerOnly hides ReadFrom so io.CopyBuffer does not recurse.
type writerOnly struct{ io.Writer }

// Flush sends the headers if they have not gone yet; the body is never held back.
func (w *responseWriter) Flush() {
	if !w.sent {
		if w.status == 0 {
			w.status = http.StatusOK
		}
		w.send(nil)
	}
}

// send hands the caller its response; first is the start of the body, for sniffing.
func (w *responseWriter) send(first []byte) {
	w.sent = true
	h := w.header.Clone()
	w.noBody = w.req.Method == http.MethodHead || !bodyAllowed(w.status)
	if _, ok := h["Content-Type"]; !ok && !w.noBody && len(first) > 0 && h.Get("Transfer-Encoding") == "" {
		h.Set("Content-Type", http.DetectContentType(first))
	}
	if _, ok := h["Date"]; !ok {
		h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	if n, err := strconv.ParseInt(h.Get("Content-Length"), 10, 64); err == nil && n >= 0 {
		w.declared = n
	}
	resp := &http.Response{
		Status:        strconv.Itoa(w.status) + " " + http.StatusText(w.status),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		ContentLength: w.declared,
		Request:       w.req,
	}
	switch {
	case w.noBody:
		resp.Body = http.NoBody
		if w.req.Method != http.MethodHead {
			resp.ContentLength = 0
		}
	default:
		resp.Body = w.body
		if w.declared < 0 {
			resp.TransferEncoding = []string{"chunked"}
		}
	}
	w.resp = resp
	close(w.ready)
}

// bodyAllowed reports whether a response with status may carry a body.
func bodyAllowed(status int) bool {
	return status >= 200 && status != http.StatusNoContent && status != http.StatusNotModified
}
