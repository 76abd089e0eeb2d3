package export

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/portcullis-dev/portcullis/audit"
	"github.com/portcullis-dev/portcullis/audit/ocsf"
)

// Item is one spooled event on its way out.
type Item struct {
	// ID identifies the event for de-duplication: derived from its canonical bytes, so
	// every redelivery (after a retry or a restart) carries the same id.
	ID string
	// Event is the decision record; Raw its canonical JSON, as spooled.
	Event audit.Event
	Raw   []byte
}

// EventID is the stable id of an event whose canonical JSON is raw: the first 128 bits of
// its SHA-256, in hex. The JSON holds the request id and the time to the nanosecond, so
// distinct events differ and one event redelivered does not.
func EventID(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// Encoding is how an event is written inside a sink's envelope.
type Encoding string

// Encodings.
const (
	// EncodingNative writes the audit event's own JSON (what the audit log holds).
	EncodingNative Encoding = "native"
	// EncodingOCSF writes OCSF 1.3.0 records: an API Activity per decision, a Vulnerability
	// Finding per finding.
	EncodingOCSF Encoding = "ocsf"
)

// payload is one message to send: an event natively, or one of its OCSF records.
type payload struct {
	// ID is unique per message and stable across redeliveries.
	ID string
	// Kind names the message's content: the event type (native) or the OCSF class name.
	Kind string
	// Severity orders messages for syslog: an OCSF severity_id (1 informational ... 5
	// critical) derived from the verdict or the finding.
	Severity int
	Body     json.RawMessage
}

// encoder writes the payloads of an item.
type encoder struct {
	encoding Encoding
	ocsf     ocsf.Encoder
}

func (e encoder) payloads(it Item) ([]payload, error) {
	if e.encoding != EncodingOCSF {
		return []payload{{ID: it.ID, Kind: it.Event.Type, Severity: eventSeverity(it.Event), Body: it.Raw}}, nil
	}
	recs, err := e.ocsf.Encode(it.Event, it.ID)
	if err != nil {
		return nil, err
	}
	ps := make([]payload, len(recs))
	for i, r := range recs {
		var sev struct {
			SeverityID int `json:"severity_id"`
		}
		if err := json.Unmarshal(r.JSON, &sev); err != nil {
			return nil, fmt.Errorf("OCSF record: %w", err)
		}
		ps[i] = payload{ID: r.ID, Kind: "ocsf." + r.ClassName, Severity: sev.SeverityID, Body: r.JSON}
	}
	return ps, nil
}

// eventSeverity is an OCSF-style severity_id for a native event: a denial, or a decision
// the fail mode made, is medium (3); a warning low (2); the rest informational (1).
func eventSeverity(e audit.Event) int {
	switch {
	case e.Verdict == "deny" || e.Undecided != "":
		return 3
	case e.Verdict == "warn" || e.Type == audit.TypeExceptionExpiring:
		return 2
	}
	return 1
}
