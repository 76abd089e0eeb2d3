package proxy

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
)

// DecisionIDHeader names the response header that carries the id of the decision made on
// a manifest request: the requestId of its audit event, so that a person holding only a
// status line can find the record.
const DecisionIDHeader = "Portcullis-Decision-Id"

// maxReason caps the reason phrase, in bytes, "..." included.
const maxReason = 200

// seeCheck ends a policy denial's reason phrase: where the whole story is.
const seeCheck = "; see portcullis check"

// refusalReason is the short form of a gate refusal for the status line: the rules that
// denied with their findings, or what could not be decided. The message itself stays in
// the body.
func refusalReason(res gate.Result) string {
	denials := res.Decision.Denials()
	if res.Unavailable || len(denials) == 0 || res.Lasting && onlyUnchecked(denials) {
		// The gate's own sentence starts with what is missing and who must act, up to
		// the first colon; the details after it are for the body.
		first, _, _ := strings.Cut(res.Message, ": ")
		return "could not decide: " + strings.TrimSuffix(first, ".")
	}
	parts := make([]string, len(denials))
	for i, d := range denials {
		parts[i] = "[" + d.Rule + "] " + d.Finding
	}
	const prefix = "denied by policy: "
	text := clean(strings.Join(parts, "; "))
	if room := maxReason - len(prefix) - len(seeCheck); len(text) > room {
		text = strings.TrimRight(text[:room-3], " ") + "..."
	}
	return prefix + text + seeCheck
}

// clean keeps printable ASCII: every other byte (CR, LF, other controls, non-ASCII, which
// may come from names the client chose) becomes a space, and runs of spaces become one.
func clean(s string) string {
	var b strings.Builder
	space := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = ' '
		}
		if c == ' ' && space {
			continue
		}
		space = c == ' '
		b.WriteByte(c)
	}
	return strings.TrimSpace(b.String())
}

// reasonPhrase is text made safe for a status line: printable ASCII, at most maxReason
// bytes (cut with "..."). "" stays "".
func reasonPhrase(text string) string {
	s := clean(text)
	if len(s) > maxReason {
		s = strings.TrimRight(s[:maxReason-3], " ") + "..."
	}
	return s
}

// hijackedWriter is a ResponseWriter that records what was sent on a connection taken
// over from it (the access log's status and size).
type hijackedWriter interface {
	hijacked(status int, bytes int64)
}

// writeWithReason answers r with status, reason and body on the connection itself, since
// net/http writes only the standard reason phrases: it takes the HTTP/1.x connection over,
// writes one complete response with w's headers (Connection: close, no body for a HEAD)
// and closes it. It reports false, having written nothing, when the connection cannot be
// taken over (HTTP/2, or a writer that does not allow it).
func writeWithReason(w http.ResponseWriter, r *http.Request, status int, reason string, body []byte) bool {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetWriteDeadline(time.Now().Add(time.Minute))
	proto := "HTTP/1.1"
	if !r.ProtoAtLeast(1, 1) {
		proto = "HTTP/1.0"
	}
	h := w.Header().Clone()
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	for k := range h {
		if !validFieldName(k) {
			delete(h, k)
		}
	}
	bw := rw.Writer
	if bw == nil {
		bw = bufio.NewWriter(conn)
	}
	_, _ = bw.WriteString(proto + " " + strconv.Itoa(status) + " " + reason + "\r\n")
	_ = h.Write(bw) // values have CR and LF replaced by spaces
	_, _ = bw.WriteString("\r\n")
	method := r.Method
	if info, ok := requestFrom(r.Context()); ok && info.method != "" {
		method = info.method // a manifest HEAD reaches the upstream as a GET
	}
	sent := int64(0)
	if method != http.MethodHead {
		n, _ := bw.Write(body)
		sent = int64(n)
	}
	_ = bw.Flush()
	if hw, ok := w.(hijackedWriter); ok {
		hw.hijacked(status, sent)
	}
	return true
}

// validFieldName reports whether k is an RFC 9110 token, as a header name must be.
func validFieldName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
