package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/match"
	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// sarifOf renders findings as SARIF 2.1.0 for CI code-scanning views: a result per
// vulnerability, and one per secret with only the redacted excerpt in its message: a secret
// in a layer file is located at the file and line, with the layer in its properties; one in
// the configuration (Env, labels, history) at a logical location naming where.
func sarifOf(ref string, targets []scanTarget) map[string]any {
	rules := map[string]map[string]any{}
	var results []map[string]any
	for _, t := range targets {
		for _, f := range t.Report.Findings {
			if _, ok := rules[f.ID]; !ok {
				rules[f.ID] = map[string]any{"id": f.ID, "shortDescription": map[string]string{"text": firstNonEmpty(f.Summary, f.ID)},
					"properties": map[string]any{"aliases": f.Aliases, "severity": f.Severity.String()}}
			}
			msg := fmt.Sprintf("%s %s in %s is affected by %s", f.Package.Name, f.Package.Version, ref, f.ID)
			if f.Fixed != "" {
				msg += "; fixed in " + f.Fixed
			}
			if f.Undecided != "" {
				msg += "; reported as affected because its range could not be evaluated: " + f.Undecided
			}
			uri := f.Package.Path
			if uri == "" {
				uri = f.Package.Name
			}
			results = append(results, map[string]any{
				"ruleId":  f.ID,
				"level":   sarifLevel(f.Severity),
				"message": map[string]string{"text": msg},
				"locations": []any{map[string]any{"physicalLocation": map[string]any{
					"artifactLocation": map[string]string{"uri": strings.TrimPrefix(uri, "/")}}}},
			})
		}
		for _, s := range t.Secrets {
			id := "secret/" + s.Type
			if _, ok := rules[id]; !ok {
				rules[id] = map[string]any{"id": id, "shortDescription": map[string]string{"text": "Secret in the image: " + s.Type},
					"properties": map[string]any{"category": "secret"}}
			}
			msg := fmt.Sprintf("%s in %s: %s (%s)", s.Type, ref, s.Where(), s.Excerpt)
			if s.Note != "" {
				msg += "; " + s.Note
			}
			props := map[string]any{"layer": s.Layer, "layerNumber": s.LayerNumber, "deleted": s.Deleted, "confidence": s.Confidence}
			if t.Platform != "" {
				props["platform"] = t.Platform
			}
			// A layer file is a physical location; the configuration (Env, a label, a
			// history entry) only a logical one.
			loc := map[string]any{"logicalLocations": []any{map[string]string{"fullyQualifiedName": s.Location, "kind": "resource"}}}
			if s.Path != "" {
				loc = map[string]any{"physicalLocation": map[string]any{
					"artifactLocation": map[string]string{"uri": strings.TrimPrefix(s.Path, "/")},
					"region":           map[string]int{"startLine": s.Line},
				}}
			}
			results = append(results, map[string]any{
				"ruleId":     id,
				"level":      sarifSecretLevel(s.Confidence),
				"message":    map[string]string{"text": msg},
				"locations":  []any{loc},
				"properties": props,
			})
		}
	}
	ids := make([]string, 0, len(rules))
	for id := range rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ruleList := make([]any, len(ids))
	for i, id := range ids {
		ruleList[i] = rules[id]
	}
	return sarifDocument(ruleList, results, sarifInvocation(targets))
}

// sarifDocument is a SARIF 2.1.0 log of one portcullis run: its rules, results and
// invocation.
func sarifDocument(rules []any, results []map[string]any, invocation map[string]any) map[string]any {
	if results == nil {
		results = []map[string]any{}
	}
	if rules == nil {
		rules = []any{}
	}
	return map[string]any{
		"version": "2.1.0",
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"runs": []any{map[string]any{
			"tool":        map[string]any{"driver": map[string]any{"name": "portcullis", "version": version, "rules": rules}},
			"invocations": []any{invocation},
			"results":     results,
		}},
	}
}

// sarifInvocation says whether the scan read everything: executionSuccessful is false when
// a layer could not be read to the end, and each such layer (and an unknown operating
// system, a layer that is not what the configuration claims) is a notification.
func sarifInvocation(targets []scanTarget) map[string]any {
	notes := []any{}
	complete := true
	note := func(id, level, text string, t scanTarget) {
		props := map[string]any{"digest": t.Digest}
		if t.Platform != "" {
			props["platform"] = t.Platform
		}
		notes = append(notes, map[string]any{"descriptor": map[string]string{"id": id}, "level": level,
			"message": map[string]string{"text": text}, "properties": props})
	}
	for _, t := range targets {
		named := false
		for _, l := range t.Layers {
			if l.Incomplete {
				named = true
				note("incomplete-layer", "error", fmt.Sprintf("layer %d (blob %s, diffID %s) was not read to the end, so it was not fully scanned: %s", l.Number, l.Blob, l.DiffID, l.Reason), t)
			}
		}
		if t.Incomplete {
			complete = false
			if !named {
				note("incomplete-layer", "error", "the scan is incomplete: "+strings.Join(t.Report.Reasons, "; "), t)
			}
		}
		if t.Report.OSUnknown {
			note("os-unknown", "warning", "the operating system is unknown, so its OS packages were not checked: "+t.Report.OSUnknownReason, t)
		}
		for _, m := range t.Report.Mismatched {
			complete = false
			note("diffid-mismatch", "error", m.String(), t)
		}
	}
	return map[string]any{"executionSuccessful": complete, "toolExecutionNotifications": notes}
}

func sarifLevel(s match.Severity) string {
	switch {
	case s >= match.SeverityHigh || s == match.SeverityUnknown:
		return "error"
	case s == match.SeverityMedium:
		return "warning"
	}
	return "note"
}

// sarifSecretLevel maps a detector's confidence to a SARIF level.
func sarifSecretLevel(c secrets.Confidence) string {
	switch c {
	case secrets.ConfidenceHigh:
		return "error"
	case secrets.ConfidenceMedium:
		return "warning"
	}
	return "note"
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
