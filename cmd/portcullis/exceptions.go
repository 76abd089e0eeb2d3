package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/policy"
)

const exceptionsHelp = `Usage: portcullis exceptions COMMAND [flags]

Commands:
  lint FILE...          check a policy file and its exception files, printing every problem
  list --policy FILE    list the exceptions with their status, days left and age
  due --policy FILE     list the exceptions that expire soon or have expired
  vex --policy FILE     write an OpenVEX document from the exceptions in force that carry vex

Exceptions are written in the policy file (exceptions:) or in files it names
(exceptionFiles:, relative to the policy file). See docs/EXCEPTIONS.md.

Run "portcullis exceptions COMMAND -h" for a command's flags and an example.
`

const exceptionsLintHelp = `Usage: portcullis exceptions lint [--now DATE] [--output text|json] FILE...

Checks policy files and the exception files they name with the same checks
the gateway applies on load, and prints every problem as
"FILE: path: message", e.g.
  policy.yaml: exceptionFiles[0] (exceptions/team-a.yaml)[2].expires: required
A valid file gets a summary of its exceptions today (or on --now), and a
note for each exception that has expired.
Exit status: 0 when every file is valid, 1 when any is not, 2 on usage errors.

Example:
  portcullis exceptions lint deploy/policy.yaml

Flags:
`

const exceptionsListHelp = `Usage: portcullis exceptions list --policy FILE [--now DATE] [--output table|json]

Lists every exception of a policy (its own and those of its exception files)
with the service and team owning its repository scope (from the policy's
services; a glob can reach several), its status today (or on --now): active,
expired or not-yet-valid, the days left (today included), its age in days,
and how many exceptions extend it, directly or in turn.
Exit status: 0 when listed, 1 when the policy is invalid, 2 on usage errors.

Example:
  portcullis exceptions list --policy deploy/policy.yaml --now 2026-12-01

Flags:
`

const exceptionsDueHelp = `Usage: portcullis exceptions due --policy FILE [--within 14d] [--now DATE] [--output table|json]

Lists the exceptions that end within --within of today (or of --now), and
those that have already expired, soonest first: the to-do list of
exceptions to extend, close or remove. --within takes days (14d), weeks
(2w) or a Go duration (336h).
Exit status: 0 when listed (whether or not any is due), 1 when the policy is
invalid, 2 on usage errors.

Example:
  portcullis exceptions due --policy deploy/policy.yaml --within 14d

Flags:
`

// runExceptions runs "portcullis exceptions ARGS" and returns the exit status.
func runExceptions(args []string, stdout, stderr io.Writer) int {
	return dispatch("exceptions", exceptionsHelp, map[string]subcommand{
		"lint": runExceptionsLint, "list": runExceptionsList, "due": runExceptionsDue, "vex": runExceptionsVEX,
	}, args, stdout, stderr)
}

// exceptionsLintResult is the JSON form of one linted file.
type exceptionsLintResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Revision string           `json:"revision,omitempty"`
	Problems []policy.Problem `json:"problems,omitempty"`
	// Exceptions counts the exceptions by state, when valid.
	Exceptions map[policy.ExceptionState]int `json:"exceptions,omitempty"`
}

// runExceptionsLint runs "portcullis exceptions lint".
func runExceptionsLint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis exceptions lint", flag.ContinueOnError)
	nowFlag := fs.String("now", "", "judge expiry on this day, YYYY-MM-DD in UTC (default: now)")
	output := fs.String("output", "text", "output format: text or json")
	files, status, ok := policyFlags(fs, exceptionsLintHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	usageErr := exceptionsUsageErr("lint", stderr)
	if *output != "text" && *output != "json" {
		return usageErr("--output: want text or json, got %q", *output)
	}
	if len(files) == 0 {
		return usageErr("no FILE given")
	}
	now, err := exceptionsNow(*nowFlag)
	if err != nil {
		return usageErr("--now: %v", err)
	}
	status = 0
	var results []exceptionsLintResult
	for _, file := range files {
		res := exceptionsLintResult{File: file}
		p, err := parsePolicyFile(file)
		if res.Problems = problemsOf(err); err == nil {
			res.Valid, res.Revision = true, p.Revision()
			res.Exceptions = map[policy.ExceptionState]int{}
			for _, e := range p.Exceptions() {
				res.Exceptions[e.Status(now).State]++
			}
		}
		if !res.Valid {
			status = 1
		}
		results = append(results, res)
		if *output != "text" {
			continue
		}
		for _, pr := range res.Problems {
			fmt.Fprintf(stdout, "%s: %s\n", file, pr)
		}
		if res.Valid {
			c := res.Exceptions
			fmt.Fprintf(stdout, "%s: ok (%s: %d active, %d expired, %d not yet valid on %s)\n", file,
				plural(len(p.Exceptions()), "exception"), c[policy.ExceptionActive], c[policy.ExceptionExpired], c[policy.ExceptionNotYetValid], now.Format(time.DateOnly))
			for _, e := range p.Exceptions() {
				if e.Status(now).State == policy.ExceptionExpired {
					fmt.Fprintf(stdout, "%s: note: %s (%s) expired on %s%s\n", file, e.ID, e.Source, e.Expires.Format(time.DateOnly), extendedNote(e, "; remove it or extend it"))
				}
			}
		}
	}
	if *output == "json" {
		return writeJSON("lint", stdout, stderr, results, status)
	}
	return status
}

// exceptionJSON is one exception with its status, for --output json.
type exceptionJSON struct {
	policy.Exception
	Status policy.ExceptionStatus `json:"status"`
}

// exceptionsListing is the JSON output of list and due.
type exceptionsListing struct {
	Policy     string          `json:"policy"`
	Now        string          `json:"now"`
	Within     string          `json:"within,omitempty"`
	Exceptions []exceptionJSON `json:"exceptions"`
}

// runExceptionsList runs "portcullis exceptions list".
func runExceptionsList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis exceptions list", flag.ContinueOnError)
	file := fs.String("policy", "", "policy file (required)")
	nowFlag := fs.String("now", "", "status on this day, YYYY-MM-DD in UTC (default: now)")
	output := fs.String("output", "table", "output format: table or json")
	pos, status, ok := policyFlags(fs, exceptionsListHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	now, p, status := exceptionsSetup("list", *file, *nowFlag, *output, pos, stderr)
	if p == nil {
		return status
	}
	es := p.Exceptions()
	if *output == "json" {
		return writeJSON("list", stdout, stderr, listing(*file, now, "", es), 0)
	}
	if len(es) == 0 {
		fmt.Fprintf(stdout, "%s has no exceptions\n", *file)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tOWNER\tREPOSITORY\tSERVICE\tTEAM\tCOVERS\tCREATED\tEXPIRES\tDAYS LEFT\tAGE\tEXTENSIONS")
	for _, e := range es {
		st := e.Status(now)
		left := strconv.Itoa(st.DaysLeft)
		if st.State == policy.ExceptionExpired {
			left = "-"
		}
		service, team := serviceColumns(e.Services)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%dd\t%d\n", e.ID, st.State, e.Owner, scopeTarget(e.Scope), service, team, covers(e.Scope),
			e.Created.Format(time.DateOnly), e.Expires.Format(time.DateOnly), left, st.AgeDays, e.Extensions)
	}
	tw.Flush()
	return 0
}

// runExceptionsDue runs "portcullis exceptions due".
func runExceptionsDue(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis exceptions due", flag.ContinueOnError)
	file := fs.String("policy", "", "policy file (required)")
	withinFlag := fs.String("within", "14d", "window: days (14d), weeks (2w) or a Go duration (336h)")
	nowFlag := fs.String("now", "", "count from this day, YYYY-MM-DD in UTC (default: now)")
	output := fs.String("output", "table", "output format: table or json")
	pos, status, ok := policyFlags(fs, exceptionsDueHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	within, err := parseWithin(*withinFlag)
	if err != nil {
		return exceptionsUsageErr("due", stderr)("--within: %v", err)
	}
	now, p, status := exceptionsSetup("due", *file, *nowFlag, *output, pos, stderr)
	if p == nil {
		return status
	}
	due := p.DueExceptions(now, within)
	if *output == "json" {
		return writeJSON("due", stdout, stderr, listing(*file, now, *withinFlag, due), 0)
	}
	day := now.Format(time.DateOnly)
	if len(due) == 0 {
		fmt.Fprintf(stdout, "no exception of %s ends within %s of %s, and none has expired\n", *file, *withinFlag, day)
		return 0
	}
	fmt.Fprintf(stdout, "exceptions of %s that end within %s of %s or have expired:\n\n", *file, *withinFlag, day)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tWHEN\tOWNER\tREPOSITORY\tCOVERS\tEXPIRES\tTICKET\tNOTE")
	for _, e := range due {
		st := e.Status(now)
		note := strings.TrimPrefix(extendedNote(e, ""), "; ")
		if note == "" {
			note = "-"
		}
		ticket := e.Ticket
		if ticket == "" {
			ticket = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, st.State, when(e, now), e.Owner, scopeTarget(e.Scope), covers(e.Scope),
			e.Expires.Format(time.DateOnly), ticket, note)
	}
	tw.Flush()
	return 0
}

// exceptionsSetup checks the common flags of list and due and loads the
// policy. On failure p is nil and status is the exit status.
func exceptionsSetup(cmd, file, nowFlag, output string, pos []string, stderr io.Writer) (now time.Time, p *policy.Policy, status int) {
	usageErr := exceptionsUsageErr(cmd, stderr)
	switch {
	case len(pos) > 0:
		return now, nil, usageErr("unexpected arguments %q (give the policy with --policy)", pos)
	case file == "":
		return now, nil, usageErr("--policy FILE is required")
	case output != "table" && output != "json":
		return now, nil, usageErr("--output: want table or json, got %q", output)
	}
	now, err := exceptionsNow(nowFlag)
	if err != nil {
		return now, nil, usageErr("--now: %v", err)
	}
	p, err = parsePolicyFile(file)
	var ve *policy.ValidationError
	switch {
	case errors.As(err, &ve):
		for _, pr := range ve.Problems {
			fmt.Fprintf(stderr, "%s: %s\n", file, pr)
		}
		return now, nil, 1
	case err != nil:
		fmt.Fprintf(stderr, "portcullis exceptions %s: %v\n", cmd, err)
		return now, nil, 1
	}
	return now, p, 0
}

// exceptionsUsageErr returns a function that reports a usage error of
// "portcullis exceptions cmd" and returns 2.
func exceptionsUsageErr(cmd string, stderr io.Writer) func(format string, a ...any) int {
	return func(format string, a ...any) int {
		fmt.Fprintf(stderr, "portcullis exceptions %s: "+format+"\n", append([]any{cmd}, a...)...)
		fmt.Fprintf(stderr, "Run \"portcullis exceptions %s -h\" for usage.\n", cmd)
		return 2
	}
}

// exceptionsNow is --now, or the current time.
func exceptionsNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now().UTC(), nil
	}
	return parsePolicyNow(s)
}

// parseWithin reads --within: Nd, Nw or a Go duration.
func parseWithin(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v < 0 || v > 3650 {
				return 0, fmt.Errorf("want a number of days such as 14d, got %q", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want days (14d), weeks (2w) or a duration (336h), got %q", s)
	}
	return d, nil
}

// listing is the JSON output of list and due.
func listing(file string, now time.Time, within string, es []policy.Exception) exceptionsListing {
	l := exceptionsListing{Policy: file, Now: now.Format(time.DateOnly), Within: within, Exceptions: []exceptionJSON{}}
	for _, e := range es {
		l.Exceptions = append(l.Exceptions, exceptionJSON{Exception: e, Status: e.Status(now)})
	}
	return l
}

// writeJSON writes v indented and returns status, or 1 when writing fails.
func writeJSON(cmd string, stdout, stderr io.Writer, v any, status int) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "portcullis exceptions %s: %v\n", cmd, err)
		return 1
	}
	return status
}

// scopeTarget is the repository of a scope with its tag or short digest.
func scopeTarget(s policy.ExceptionScope) string {
	switch {
	case s.Tag != "":
		return s.Repository + ":" + s.Tag
	case s.Digest != "":
		d := s.Digest
		if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
			d = d[:i+13] + "..."
		}
		return s.Repository + "@" + d
	}
	return s.Repository
}

// serviceColumns are the SERVICE and TEAM cells of an exception: the names of the services
// owning its scope and their distinct teams, comma-separated; "-" when no service owns it.
func serviceColumns(ss []policy.ServiceRef) (services, teams string) {
	if len(ss) == 0 {
		return "-", "-"
	}
	var names, ts []string
	for _, s := range ss {
		names = append(names, s.Name)
		if !slices.Contains(ts, s.Team) {
			ts = append(ts, s.Team)
		}
	}
	return strings.Join(names, ","), strings.Join(ts, ",")
}

// covers lists the rules, vulnerabilities and package of a scope.
func covers(s policy.ExceptionScope) string {
	var parts []string
	if len(s.Rules) > 0 {
		parts = append(parts, "rules "+strings.Join(s.Rules, ","))
	}
	if len(s.Vulnerabilities) > 0 {
		parts = append(parts, strings.Join(s.Vulnerabilities, ","))
	}
	if s.Package != "" {
		parts = append(parts, "in "+s.Package)
	}
	return strings.Join(parts, " ")
}

// when says when an exception ends or ended, relative to now.
func when(e policy.Exception, now time.Time) string {
	st := e.Status(now)
	switch {
	case st.State == policy.ExceptionExpired:
		y, m, d := now.UTC().Date()
		ago := int(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Sub(e.Expires).Hours() / 24)
		if ago == 1 {
			return "last day was yesterday"
		}
		return fmt.Sprintf("last day was %d days ago", ago)
	case st.DaysLeft == 1:
		return "ends today"
	}
	return fmt.Sprintf("ends in %d days", st.DaysLeft)
}

// extendedNote is "; extended by ID, ..." when exceptions extend e, else
// fallback.
func extendedNote(e policy.Exception, fallback string) string {
	if len(e.ExtendedBy) > 0 {
		return "; extended by " + strings.Join(e.ExtendedBy, ", ")
	}
	return fallback
}

// plural is "1 exception" or "N exceptions".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
