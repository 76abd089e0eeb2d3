package gate

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

// retryBriefly is the Retry-After given when evidence could not be gathered for a reason
// that clears by itself (the upstream or the cache did not answer).
const retryBriefly = 10 * time.Second

// lastingError is evidence that cannot be gathered until someone changes the gateway:
// retrying does not help. Its text says what is missing and what to do, and never names a
// server path; detail, for the gateway's own log and /readyz, may.
type lastingError struct {
	msg    string
	detail error
}

func (e *lastingError) Error() string { return e.msg }

// isLasting reports whether err is a condition that will not clear by itself: a gateway
// configured without a component the policy needs (errString) or a lastingError.
func isLasting(err error) bool {
	var es errString
	var le *lastingError
	return errors.As(err, &es) || errors.As(err, &le)
}

// readsRefused turns an upstream's refusal of the gateway's own reads (an error carrying an
// authentication challenge: the client's own were relayed before) into the lasting
// condition it is: the upstream requires authentication and the service account is missing,
// wrong or without rights. Retrying does not help; an operator must act. Other errors are
// returned as they are.
func readsRefused(err error) error {
	var ch challenger
	if err == nil || !errors.As(err, &ch) {
		return err
	}
	status, _ := ch.Challenge()
	return &lastingError{
		msg: fmt.Sprintf("the upstream requires authentication and refused the gateway's own reads (%d %s): configure upstream.serviceAccount, or check its credentials and read rights",
			status, http.StatusText(status)),
		detail: err,
	}
}

// ungathered lists the rule types whose evidence was needed but is not in in: gather stops
// at the first evidence it cannot gather, so the later ones are missing too.
func ungathered(needs policy.Needs, in policy.Input) []string {
	var out []string
	if needs.Signatures && in.Signatures == nil && in.Action == policy.ActionPull {
		out = append(out, policy.TypeSignature)
	}
	if needs.Image && in.Image == nil {
		out = append(out, policy.TypeConfig, policy.TypeSecret)
	}
	if needs.Platform && in.Platform == nil {
		out = append(out, policy.TypePlatform)
	}
	if needs.Scan && in.Vulnerabilities == nil {
		out = append(out, policy.TypeVulnerability)
	}
	return out
}

// deniedAnyway reports whether a rule other than the blocking ones that could not be
// checked denies dec.
func deniedAnyway(dec policy.Decision, blocking []string) bool {
	for _, r := range dec.Denials() {
		if !slices.Contains(blocking, r.Rule) {
			return true
		}
	}
	return false
}

// checkName names the check of the first of the rule types whose evidence could not be
// gathered (the one the failure was about), capitalised for the first words of a refusal:
// what could not run.
func checkName(types []string) string {
	names := map[string]string{
		policy.TypeImmutable: "The tag check", policy.TypeSignature: "Signature verification",
		policy.TypeConfig: "Image inspection", policy.TypeSecret: "Image inspection", policy.TypeVulnerability: "Vulnerability scanning",
		policy.TypePlatform: "The platform check",
	}
	for _, t := range types {
		if n := names[t]; n != "" {
			return n
		}
	}
	return "A check"
}
