// Package ocsf encodes decision events as OCSF 1.3.0 records: API Activity for an admission
// decision, Vulnerability Finding for each finding it names.
package ocsf
