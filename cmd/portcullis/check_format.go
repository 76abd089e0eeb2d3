package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/proxy"
)

// printCheckTable writes rep for people. Every text from the gateway goes through
// printable: it may quote what is in the image.
func printCheckTable(w io.Writer, image string, rep *proxy.DecisionReport) error {
	verdict := map[string]string{
		"allow": "ALLOW", "warn": "WARN (allowed, with warnings)", "deny": "DENY",
	}[rep.Verdict]
	if verdict == "" {
		verdict = strings.ToUpper(printable(rep.Verdict))
	}
	if rep.Undecided != nil && rep.Undecided.Unavailable {
		verdict = "COULD NOT DECIDE (refused for now; retry)"
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "image\t%s\n", printable(image))
	fmt.Fprintf(tw, "digest\t%s\n", printable(rep.Digest))
	fmt.Fprintf(tw, "environment\t%s (%s)\n", printable(rep.Environment), printable(rep.Action))
	fmt.Fprintf(tw, "verdict\t%s\n", verdict)
	fmt.Fprintf(tw, "decision id\t%s\n", printable(rep.DecisionID))
	if s := rep.Service; s != nil {
		fmt.Fprintf(tw, "service\t%s (team %s)\n", printable(s.Name), printable(s.Team))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "RULE\tMODE\tOUTCOME\tFINDING")
	for _, r := range rep.Results {
		finding := r.Finding
		if r.BlockingFrom != "" {
			finding += " [blocks from " + r.BlockingFrom + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", printable(r.Rule), printable(r.Mode), printable(r.Outcome), printable(finding))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Message != "" {
		fmt.Fprintf(w, "\nRefused: %s\n", printable(rep.Message))
	}
	if u := rep.Undecided; u != nil {
		fmt.Fprintf(w, "\nCould not check everything: %s\n", printable(u.Reason))
		switch {
		case u.Unavailable:
			fmt.Fprintf(w, "  The gateway refuses the image for now (environment fails %s); retry in %ds.\n", printable(u.FailMode), u.RetryAfterSeconds)
		case u.Lasting:
			fmt.Fprintln(w, "  Retrying will not help: the platform team must act.")
		case u.FailMode != "":
			fmt.Fprintf(w, "  The environment fails %s.\n", printable(u.FailMode))
		}
	}
	if rep.ScanEvidence != "" {
		fmt.Fprintf(w, "\nScan evidence: %s\n", printable(rep.ScanEvidence))
	}
	if len(rep.Warnings) > 0 {
		fmt.Fprintln(w, "\nWarnings (let through today):")
		for _, s := range rep.Warnings {
			fmt.Fprintf(w, "  - %s\n", printable(s))
		}
	}
	if len(rep.Deadlines) > 0 {
		fmt.Fprintln(w, "\nDeadlines (inherited vulnerabilities; they block from the day given):")
		for _, d := range rep.Deadlines {
			left := fmt.Sprintf("%d days left", d.DaysLeft)
			if d.DaysLeft <= 0 {
				left = "overdue: blocking"
			}
			fmt.Fprintf(w, "  - %s in %s %s (%s): blocks from %s, %s [%s, window %dd]\n", printable(d.ID), printable(d.Package),
				printable(d.Version), printable(d.Severity), d.Due.Format("2006-01-02"), left, printable(d.Rule), d.WindowDays)
		}
	}
	if len(rep.Disagreements) > 0 {
		fmt.Fprintln(w, "\nScanners disagree (findings are united whatever they say):")
		for _, d := range rep.Disagreements {
			var says []string
			for _, r := range d.Reports {
				fix := r.Fixed
				if fix == "" {
					fix = "no fix"
				}
				says = append(says, fmt.Sprintf("%s: %s %s, %s", printable(r.Scanner), printable(r.ID), printable(r.Severity), printable(fix)))
			}
			line := fmt.Sprintf("  - %s in %s (%s): %s", printable(d.ID), printable(d.Package), strings.Join(d.On, ", "), strings.Join(says, "; "))
			if len(d.MissingFrom) > 0 {
				line += "; not reported by " + printable(strings.Join(d.MissingFrom, ", "))
			}
			fmt.Fprintln(w, line)
		}
	}
	if len(rep.Recorded) > 0 {
		fmt.Fprintln(w, "\nRecorded decisions on this digest (newest first):")
		for _, d := range rep.Recorded {
			fmt.Fprintf(w, "  - %s %s %s in %s: %s (decision %s)\n", d.Time.UTC().Format(time.DateOnly), printable(d.Action),
				printable(d.Reference), printable(d.Environment), printable(d.Verdict), printable(d.DecisionID))
		}
	}
	var excepted []proxy.RuleResult
	for _, r := range rep.Results {
		if r.Exception != nil {
			excepted = append(excepted, r)
		}
	}
	if len(excepted) > 0 {
		fmt.Fprintln(w, "\nExceptions in force:")
		for _, r := range excepted {
			x := r.Exception
			fmt.Fprintf(w, "  - %s covers %s until %s (%d days left), owner %s", printable(x.ID), printable(r.Rule),
				printable(x.Expires), x.DaysLeft, printable(x.Owner))
			if x.Ticket != "" {
				fmt.Fprintf(w, ", ticket %s", printable(x.Ticket))
			}
			fmt.Fprintln(w)
		}
	}
	var fixes, asks []string
	for _, r := range rep.Results {
		if r.Outcome != "fail" && r.Outcome != "excepted" || r.Mode == "observe" {
			continue
		}
		if r.Fix != "" {
			fixes = append(fixes, fmt.Sprintf("[%s] %s", printable(r.Rule), printable(r.Fix)))
		}
		if r.RequestException != "" && !oneOfStrings(printable(r.RequestException), asks...) {
			asks = append(asks, printable(r.RequestException))
		}
	}
	if len(fixes) > 0 {
		fmt.Fprintln(w, "\nWhat to change:")
		for _, f := range fixes {
			fmt.Fprintf(w, "  - %s\n", f)
		}
	}
	if len(asks) > 0 {
		fmt.Fprintln(w, "\nTo ask for an exception instead:")
		for _, a := range asks {
			fmt.Fprintf(w, "  - %s\n", a)
		}
	}
	return nil
}

// annotated is a result worth an annotation, with its level: error (blocks), warning
// (warns today), notice (observed, or covered by an exception).
type annotated struct {
	r     proxy.RuleResult
	level string
}

// annotations picks the results of rep that CI should show.
func annotations(rep *proxy.DecisionReport) []annotated {
	var out []annotated
	for _, r := range rep.Results {
		switch {
		case r.Outcome == "fail" && r.Mode == "block":
			out = append(out, annotated{r, "error"})
		case r.Outcome == "fail" && r.Mode == "warn":
			out = append(out, annotated{r, "warning"})
		case r.Outcome == "fail" || r.Outcome == "excepted":
			out = append(out, annotated{r, "notice"})
		}
	}
	return out
}

// writeGitHub writes GitHub Actions workflow commands, one per annotated result. The text
// is made printable (no line breaks: nothing from the image can start a command of its
// own) and escaped as the runner expects.
func writeGitHub(w io.Writer, image string, rep *proxy.DecisionReport) error {
	for _, a := range annotations(rep) {
		title := fmt.Sprintf("portcullis %s: %s", a.r.Rule, image)
		msg := fmt.Sprintf("%s (%s, %s %s): %s", image, rep.Environment, rep.Action, rep.Digest, a.r.Message)
		if _, err := fmt.Fprintf(w, "::%s title=%s::%s\n", a.level, ghProperty(title), ghData(msg)); err != nil {
			return err
		}
	}
	if u := rep.Undecided; u != nil {
		level := "warning"
		if u.Unavailable || u.Lasting {
			level = "error"
		}
		if _, err := fmt.Fprintf(w, "::%s title=%s::%s\n", level, ghProperty("portcullis could not check everything: "+image), ghData(u.Reason)); err != nil {
			return err
		}
	}
	return nil
}

// ghData escapes a workflow command's message.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(printable(s))
}

// ghProperty escapes a workflow command's property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(printable(s))
}

// gitlabIssue is one entry of a GitLab code quality report.
type gitlabIssue struct {
	Description string         `json:"description"`
	CheckName   string         `json:"check_name"`
	Fingerprint string         `json:"fingerprint"`
	Severity    string         `json:"severity"`
	Location    gitlabLocation `json:"location"`
}

type gitlabLocation struct {
	Path  string      `json:"path"`
	Lines gitlabLines `json:"lines"`
}

type gitlabLines struct {
	Begin int `json:"begin"`
}

// gitlabReport is the GitLab code quality report of rep: an issue per annotated result,
// located at source (the image's Dockerfile, say), fingerprinted by image repository,
// environment, rule and level so that the merge request widget tracks it across pipelines.
func gitlabReport(image, source string, rep *proxy.DecisionReport) []gitlabIssue {
	out := []gitlabIssue{}
	sev := map[string]string{"error": "blocker", "warning": "major", "notice": "info"}
	add := func(check, level, text string) {
		// Not the text: it counts days, and the widget would see a new issue every day.
		sum := sha256.Sum256([]byte(rep.Repository + "\x00" + rep.Environment + "\x00" + check + "\x00" + level))
		out = append(out, gitlabIssue{
			Description: printable(fmt.Sprintf("%s (%s, %s): %s", image, rep.Environment, rep.Action, text)),
			CheckName:   "portcullis/" + printable(check), Fingerprint: hex.EncodeToString(sum[:16]), Severity: sev[level],
			Location: gitlabLocation{Path: source, Lines: gitlabLines{Begin: 1}},
		})
	}
	for _, a := range annotations(rep) {
		add(a.r.Rule, a.level, a.r.Message)
	}
	if u := rep.Undecided; u != nil {
		add("undecided", map[bool]string{true: "error", false: "warning"}[u.Unavailable || u.Lasting], u.Reason)
	}
	return out
}

// sarifOfDecision is rep as SARIF 2.1.0: a rule per policy rule that applies, a result per
// annotated one located at source, with the blocking date and exception in properties; the
// run's execution is unsuccessful when the gateway could not check everything.
func sarifOfDecision(image, source string, rep *proxy.DecisionReport) map[string]any {
	var rules []any
	for _, r := range rep.Results {
		rules = append(rules, map[string]any{"id": r.Rule, "shortDescription": map[string]string{"text": "portcullis " + r.Type + " rule " + r.Rule},
			"properties": map[string]any{"type": r.Type, "mode": r.Mode}})
	}
	var results []map[string]any
	for _, a := range annotations(rep) {
		props := map[string]any{"image": image, "digest": rep.Digest, "environment": rep.Environment, "action": rep.Action,
			"outcome": a.r.Outcome, "mode": a.r.Mode, "decisionId": rep.DecisionID}
		if a.r.BlockingFrom != "" {
			props["blockingFrom"] = a.r.BlockingFrom
		}
		if a.r.Exception != nil {
			props["exception"] = a.r.Exception
		}
		results = append(results, map[string]any{
			"ruleId":     a.r.Rule,
			"level":      map[string]string{"error": "error", "warning": "warning", "notice": "note"}[a.level],
			"message":    map[string]string{"text": printable(image + ": " + a.r.Message)},
			"locations":  []any{map[string]any{"physicalLocation": map[string]any{"artifactLocation": map[string]string{"uri": source}}}},
			"properties": props,
		})
	}
	notes := []any{}
	if u := rep.Undecided; u != nil {
		notes = append(notes, map[string]any{"descriptor": map[string]string{"id": "undecided"}, "level": "error",
			"message": map[string]string{"text": printable(u.Reason)}})
	}
	return sarifDocument(rules, results, map[string]any{"executionSuccessful": rep.Undecided == nil, "toolExecutionNotifications": notes})
}
