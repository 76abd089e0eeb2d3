package policy

// Disagreement is a vulnerability that the scanners of an environment (the built-in one
// and adapters, or several adapters) do not report alike for the same package: one
// misses it, or they give it another fixed version or severity. It is evidence to read,
// not a rule: the findings stay united whatever the scanners disagree on.
type Disagreement struct {
	// ID is the vulnerability as the scanners that report it share it (an id one
	// reports that is an id or alias of the others'), else the first reporter's id.
	ID string `json:"id"`
	// Package is the affected package's name.
	Package string `json:"package"`
	// On lists what differs: "missing" (some scanner does not report it), "fixed",
	// "severity".
	On []string `json:"on"`
	// Reports are what each scanner that reports it says, in the environment's order.
	Reports []ScannerReport `json:"reports"`
	// MissingFrom names the scanners that do not report it.
	MissingFrom []string `json:"missingFrom,omitempty"`
}

// ScannerReport is what one scanner says of a vulnerability of a package.
type ScannerReport struct {
	// Scanner is "builtin" or the adapter's name.
	Scanner string `json:"scanner"`
	// ID is the scanner's own id for it.
	ID string `json:"id"`
	// Version is the installed version it saw.
	Version string `json:"version,omitempty"`
	// Fixed is the fixed version it gives, "" for none.
	Fixed string `json:"fixed,omitempty"`
	// Severity is the severity it gives, lower case.
	Severity string `json:"severity,omitempty"`
}
