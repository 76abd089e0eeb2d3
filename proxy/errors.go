package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Code is an OCI distribution error code.
type Code string

// The error codes the gateway itself produces, from the OCI distribution spec and
// distribution's registry (UNAVAILABLE).
const (
	CodeBlobUnknown     Code = "BLOB_UNKNOWN"
	CodeDigestInvalid   Code = "DIGEST_INVALID"
	CodeManifestInvalid Code = "MANIFEST_INVALID"
	CodeManifestUnknown Code = "MANIFEST_UNKNOWN"
	CodeNameInvalid     Code = "NAME_INVALID"
	CodeNameUnknown     Code = "NAME_UNKNOWN"
	CodeSizeInvalid     Code = "SIZE_INVALID"
	CodeTagInvalid      Code = "TAG_INVALID"
	CodeUnauthorized    Code = "UNAUTHORIZED"
	CodeDenied          Code = "DENIED"
	CodeUnsupported     Code = "UNSUPPORTED"
	CodeUnavailable     Code = "UNAVAILABLE"
	CodeUnknown         Code = "UNKNOWN"
)

// Error is a registry error: an OCI code, the HTTP status it is sent with, a message a
// person can act on and optional structured detail.
type Error struct {
	Status  int
	Code    Code
	Message string
	Detail  any
	// Header holds extra response headers, such as an upstream's WWW-Authenticate.
	Header http.Header
	// Reason, when set, is a short form of Message sent as the HTTP/1.1 reason phrase, for
	// clients that show only the status line (containerd resolves with HEAD). It is cleaned
	// and capped by writeError (see reasonPhrase); HTTP/2 has no reason phrase.
	Reason string
}

// Error returns "CODE: message".
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// errorf builds an *Error with a formatted message.
func errorf(status int, code Code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errorBody is the OCI error document.
type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError is the one place registry errors become HTTP. Errors that are not *Error
// become 500 UNKNOWN with the error text. r is the client's request, or the upstream
// request made on its behalf: an *Error with a Reason is answered on an HTTP/1.x
// connection with that reason phrase (see writeWithReason), elsewhere with the standard one.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Status: http.StatusInternalServerError, Code: CodeUnknown, Message: err.Error()}
	}
	body, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: e.Code, Message: e.Message, Detail: e.Detail}}})
	h := w.Header()
	for k, v := range e.Header {
		h[k] = v
	}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	h.Set("Docker-Distribution-Api-Version", "registry/2.0")
	if reason := reasonPhrase(e.Reason); reason != "" && r != nil && r.ProtoMajor == 1 &&
		writeWithReason(w, r, e.Status, reason, body) {
		return
	}
	w.WriteHeader(e.Status)
	_, _ = w.Write(body)
}
