package policy

// judged returns the results of d that judged the request: neither exemptions
// (OutcomeExempt) nor the note that no rule applies.
func judged(d Decision) []Result {
	var out []Result
	for _, r := range d.Results {
		if r.Outcome != OutcomeExempt && r.Rule != NoRule {
			out = append(out, r)
		}
	}
	return out
}
