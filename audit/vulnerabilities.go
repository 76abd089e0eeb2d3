package audit

// Vulnerabilities is what a decision's scan found, relative to the image's baseline.
type Vulnerabilities struct {
	// Baseline is the image the findings were compared with, nil when none was found;
	// BaselineNote then says why (and otherwise notes anything skipped on the way).
	Baseline     *Baseline `json:"baseline,omitempty"`
	BaselineNote string    `json:"baselineNote,omitempty"`
	// New are the findings the baseline lacks (all of them without a baseline);
	// Inherited are those it has too.
	New       []Finding `json:"new,omitempty"`
	Inherited []Finding `json:"inherited,omitempty"`
	// Disagreements are the vulnerabilities the environment's scanners (the built-in
	// one and adapters, or several adapters) do not report alike.
	Disagreements []Disagreement `json:"disagreements,omitempty"`
}

// Disagreement is one vulnerability of one package that the scanners report differently.
type Disagreement struct {
	// ID is the vulnerability's id the reporting scanners share; Package the package.
	ID      string `json:"id"`
	Package string `json:"package"`
	// On lists what differs: "missing", "fixed", "severity".
	On []string `json:"on"`
	// Reports are what each reporting scanner says; MissingFrom names the others.
	Reports     []ScannerReport `json:"reports"`
	MissingFrom []string        `json:"missingFrom,omitempty"`
}

// ScannerReport is what one scanner says of a vulnerability.
type ScannerReport struct {
	Scanner  string `json:"scanner"`
	ID       string `json:"id"`
	Version  string `json:"version,omitempty"`
	Fixed    string `json:"fixed,omitempty"`
	Severity string `json:"severity,omitempty"`
}

// Baseline names the image a decision's findings were compared with.
type Baseline struct {
	// How is "base-annotation", "layer-prefix" or "previous".
	How        string `json:"how"`
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
}

// Finding is one vulnerability of one package.
type Finding struct {
	ID       string `json:"id"`
	Package  string `json:"package"`
	Version  string `json:"version,omitempty"`
	Severity string `json:"severity,omitempty"`
	// FirstSeen is the day (YYYY-MM-DD, UTC) the vulnerability was first seen in the
	// repository, "" when unknown.
	FirstSeen string `json:"firstSeen,omitempty"`
}
