package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/policy"
)

const policyHelp = `Usage: portcullis policy COMMAND [flags]

Commands:
  lint FILE...     check policy files and print every problem
  explain REPO     show the environment, the rules and the verdict for one image

Run "portcullis policy COMMAND -h" for a command's flags and an example.
`

const policyLintHelp = `Usage: portcullis policy lint [--output text|json] FILE...

Checks policy files and prints every problem as "FILE: path: message".
An authority's keyFile is read relative to the directory of the policy file
(an absolute path is used as written), as the gateway reads it.
Exit status: 0 when every file is valid, 1 when any is not, 2 on usage errors.

Example:
  portcullis policy lint deploy/policy.yaml

Flags:
`

const policyExplainHelp = `Usage: portcullis policy explain --action push|pull [flags] REPO[:TAG|@DIGEST]

Shows which environment an image falls in, which rules apply to it and in
which mode today (or on --now), and the verdict. REPO is the repository path
without the registry host (give the host with --host). With neither TAG nor
DIGEST the tag is "latest", as docker would use. A push is explained as if
the tag were new, a pull as if the image were unsigned, and the image's
content (configuration, secrets, vulnerabilities) as if the gateway could not
check it: only the gateway knows whether the tag exists upstream, reads
signatures and inspects images. Content rules are judged as the gateway
judges missing evidence: observe records, warn warns, block follows the
environment's fail mode (closed: deny, open: warn). Key files are read
relative to the policy file.
Exit status: 0 when explained, 1 when the policy is invalid, 2 on usage errors.

Example:
  portcullis policy explain --policy deploy/policy.yaml --action push --now 2026-12-15 prod/payments/api:1.4.2

Flags:
`

// runPolicy runs "portcullis policy ARGS" and returns the exit status.
func runPolicy(args []string, stdout, stderr io.Writer) int {
	return dispatch("policy", policyHelp, map[string]subcommand{
		"lint": runPolicyLint, "explain": runPolicyExplain,
	}, args, stdout, stderr)
}

// policyFlags parses flags that may come before or after the positional
// arguments. It returns the positional arguments, or the exit status when
// parsing ended the command (help: 0, bad flags: 2).
func policyFlags(fs *flag.FlagSet, help string, args []string, stdout, stderr io.Writer) ([]string, int, bool) {
	fs.SetOutput(io.Discard)
	printHelp := func(w io.Writer) {
		fmt.Fprint(w, help)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	var pos []string
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			printHelp(stdout)
			return nil, 0, false
		}
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n\n", fs.Name(), err)
			printHelp(stderr)
			return nil, 2, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// lintResult is the JSON form of one linted file.
type lintResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Revision string           `json:"revision,omitempty"`
	Problems []policy.Problem `json:"problems,omitempty"`
}

// runPolicyLint runs "portcullis policy lint".
func runPolicyLint(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis policy lint", flag.ContinueOnError)
	output := fs.String("output", "text", "output format: text or json")
	files, status, ok := policyFlags(fs, policyLintHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "portcullis policy lint: unknown output %q (want text or json)\n", *output)
		return 2
	}
	if len(files) == 0 {
		fmt.Fprint(stderr, "portcullis policy lint: no FILE given\n\n", policyLintHelp)
		return 2
	}
	status = 0
	var results []lintResult
	for _, file := range files {
		res := lintResult{File: file}
		p, err := parsePolicyFile(file)
		if res.Problems = problemsOf(err); err == nil {
			res.Valid, res.Revision = true, p.Revision()
		}
		if !res.Valid {
			status = 1
		}
		results = append(results, res)
		if *output == "text" {
			for _, pr := range res.Problems {
				fmt.Fprintf(stdout, "%s: %s\n", file, pr)
			}
			if res.Valid {
				fmt.Fprintf(stdout, "%s: ok (%d environments, %d rules%s)\n", file, len(p.Environments()), len(p.Rules()), authorityCount(p))
			}
		}
	}
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			fmt.Fprintf(stderr, "portcullis policy lint: %v\n", err)
			return 1
		}
	}
	return status
}

// runPolicyExplain runs "portcullis policy explain".
func runPolicyExplain(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portcullis policy explain", flag.ContinueOnError)
	source := fs.String("policy", policy.BuiltinDefault, "policy file, or a built-in policy: "+strings.Join(policy.BuiltinNames(), ", ")+" (write ./NAME for a file with such a name)")
	action := fs.String("action", "", "push or pull (required)")
	host := fs.String("host", "", "the host a listener applies (its host: in the gateway config), e.g. ci.registry.example (selects host-based environments)")
	nowFlag := fs.String("now", "", "evaluate on this day, YYYY-MM-DD in UTC (default: now)")
	output := fs.String("output", "table", "output format: table or json")
	pos, status, ok := policyFlags(fs, policyExplainHelp, args, stdout, stderr)
	if !ok {
		return status
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "portcullis policy explain: "+format+"\n", a...)
		fmt.Fprintln(stderr, `Run "portcullis policy explain -h" for usage.`)
		return 2
	}
	if len(pos) != 1 {
		return usageErr("want exactly one REPO[:TAG|@DIGEST], got %d arguments", len(pos))
	}
	a := policy.Action(*action)
	if a != policy.ActionPush && a != policy.ActionPull {
		return usageErr("--action: want push or pull, got %q", *action)
	}
	if *output != "table" && *output != "json" {
		return usageErr("--output: want table or json, got %q", *output)
	}
	now := time.Now().UTC()
	if *nowFlag != "" {
		t, err := parsePolicyNow(*nowFlag)
		if err != nil {
			return usageErr("--now: %v", err)
		}
		now = t
	}
	repo, tag, digest, err := parsePolicyRef(pos[0])
	if err != nil {
		return usageErr("%v", err)
	}
	defaulted := tag == "" && digest == ""
	if defaulted {
		tag = "latest"
	}
	p, status := loadPolicyArg(*source, stderr)
	if p == nil {
		return status
	}
	x := p.Explain(a, repo, *host, tag, digest, now)
	if *output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(x); err != nil {
			fmt.Fprintf(stderr, "portcullis policy explain: %v\n", err)
			return 1
		}
		return 0
	}
	printExplanation(stdout, *source, pos[0], defaulted, x, p.Authorities())
	return 0
}

// loadPolicyArg loads the --policy argument: a built-in name or a file. On
// failure it prints why and returns the exit status.
func loadPolicyArg(source string, stderr io.Writer) (*policy.Policy, int) {
	for _, name := range policy.BuiltinNames() {
		if source == name {
			p, err := policy.Builtin(name)
			if err != nil {
				fmt.Fprintf(stderr, "portcullis policy explain: %v\n", err)
				return nil, 1
			}
			return p, 0
		}
	}
	p, err := parsePolicyFile(source)
	var ve *policy.ValidationError
	if errors.As(err, &ve) {
		for _, pr := range ve.Problems {
			fmt.Fprintf(stderr, "%s: %s\n", source, pr)
		}
		return nil, 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis policy explain: %s: %v\n", source, err)
		return nil, 1
	}
	return p, 0
}

// authorityCount is ", N authorities" for the lint summary, "" for none.
func authorityCount(p *policy.Policy) string {
	switch n := len(p.Authorities()); n {
	case 0:
		return ""
	case 1:
		return ", 1 authority"
	default:
		return fmt.Sprintf(", %d authorities", n)
	}
}

// parsePolicyNow reads --now: a UTC day, or an RFC 3339 instant.
func parsePolicyNow(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("want YYYY-MM-DD, got %q", s)
}

var (
	// policyRepoSegmentRE is the OCI distribution grammar for one path
	// component of a repository name.
	policyRepoSegmentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
	policyTagRE         = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)
	policyDigestRE      = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$`)
	policyHexRE         = regexp.MustCompile(`^[a-f0-9]+$`)
)

// parsePolicyRef splits REPO[:TAG][@DIGEST] and checks each part against
// the OCI grammar. A leading registry host is refused: the host is a flag.
func parsePolicyRef(ref string) (repo, tag, digest string, err error) {
	rest := ref
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest, digest = rest[:i], rest[i+1:]
		if err := checkPolicyDigest(digest); err != nil {
			return "", "", "", fmt.Errorf("%q: %v", ref, err)
		}
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 && i > strings.LastIndex(rest, "/") {
		rest, tag = rest[:i], rest[i+1:]
		if !policyTagRE.MatchString(tag) {
			return "", "", "", fmt.Errorf("%q: invalid tag %q (want letters, digits, '_', '.' or '-', at most 128, not starting with '.' or '-')", ref, tag)
		}
	}
	repo = rest
	if repo == "" {
		return "", "", "", fmt.Errorf("%q: no repository", ref)
	}
	segs := strings.Split(repo, "/")
	if first := segs[0]; len(segs) > 1 && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return "", "", "", fmt.Errorf("%q: %q looks like a registry host; give the repository path only and the host with --host", ref, first)
	}
	for _, s := range segs {
		if !policyRepoSegmentRE.MatchString(s) {
			return "", "", "", fmt.Errorf("%q: invalid repository %q (want lower-case path components such as team/app, separated by '/')", ref, repo)
		}
	}
	return repo, tag, digest, nil
}

// checkPolicyDigest checks a digest such as sha256:<64 hex>.
func checkPolicyDigest(d string) error {
	if !policyDigestRE.MatchString(d) {
		return fmt.Errorf("invalid digest %q (want ALGORITHM:HEX such as sha256:...)", d)
	}
	alg, hex, _ := strings.Cut(d, ":")
	want := map[string]int{"sha256": 64, "sha512": 128}[alg]
	if want > 0 && (len(hex) != want || !policyHexRE.MatchString(hex)) {
		return fmt.Errorf("invalid digest %q (%s wants %d lower-case hex digits)", d, alg, want)
	}
	return nil
}

// printExplanation writes an explanation for people, listing the policy's
// signing authorities.
func printExplanation(w io.Writer, source, ref string, defaulted bool, x policy.Explanation, authorities []policy.Authority) {
	rev := strings.TrimPrefix(x.PolicyRevision, "sha256:")
	if len(rev) > 12 {
		rev = rev[:12]
	}
	in := x.Input
	request := fmt.Sprintf("%s %s", in.Action, ref)
	if defaulted {
		request += ":latest (no tag given)"
	}
	if in.Host != "" {
		request += " via " + in.Host
	}
	if in.Kind.IsArtifact() {
		request += fmt.Sprintf(" (taken to be a %s, as its tag says; the gateway decides from the content)", in.Kind)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "policy:\t%s (revision %s)\n", source, rev)
	fmt.Fprintf(tw, "request:\t%s\n", request)
	fmt.Fprintf(tw, "date:\t%s\n", x.Now.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(tw, "environment:\t%s (%s)\n", x.Environment, x.EnvironmentReason)
	fmt.Fprintf(tw, "fail mode:\t%s\n", x.FailMode)
	if u := x.Unscanned; u != nil {
		then := u.Then
		if then == "" {
			then = "the fail mode decides"
		}
		fmt.Fprintf(tw, "unscanned pulls:\twait up to %s for the scan, then %s\n", u.Wait, then)
	}
	if sv := x.Service; sv != nil {
		fmt.Fprintf(tw, "service:\t%s\n", sv.Owned())
	}
	fmt.Fprintf(tw, "verdict:\t%s\n", x.Verdict)
	for _, r := range x.Rules {
		if r.Result != nil && r.Result.CouldNotCheck != "" {
			fmt.Fprintf(tw, "assumes:\tthe image's content could not be checked, as by a gateway without a vulnerability database; once checked, the content rules judge what it holds\n")
			break
		}
	}
	tw.Flush()
	fmt.Fprintln(w)

	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RULE\tTYPE\tCHECKS\tSCHEDULE\tTODAY\tAPPLIES\tOUTCOME\tDETAIL")
	for _, r := range x.Rules {
		applies, outcome, detail := "no", "-", r.Reason
		if r.Applies {
			applies, outcome, detail = "yes", string(r.Result.Outcome), r.Result.Finding
			if r.Reason != "" {
				detail += " (" + r.Reason + ")"
			}
		}
		checks := r.Checks
		if checks == "" {
			checks = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Rule, r.Type, checks, r.Schedule, r.EffectiveMode, applies, outcome, detail)
	}
	tw.Flush()

	if len(authorities) > 0 {
		fmt.Fprintln(w, "\nauthorities:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, a := range authorities {
			key := "inline key"
			if a.KeyFile != "" {
				key = "keyFile " + a.KeyFile
			}
			sign := a.SignCommand
			if k := a.Keyless; k != nil {
				key = "keyless " + k.Identity() + ", trustedRoot " + k.TrustedRoot
				if sign == "" {
					sign = "cosign sign, signed in as " + k.Identity()
				}
			}
			if sign == "" {
				sign = "cosign sign --key " + a.Name + ".key"
			}
			fmt.Fprintf(tw, "  %s\t%s\tsign with: %s\n", a.Name, key, sign)
		}
		tw.Flush()
	}

	d := x.Decision()
	if msg := d.DenyMessage(); msg != "" {
		fmt.Fprintf(w, "\n%s\n", msg)
	}
	var lines []string
	for _, r := range d.Results {
		if r.Outcome == policy.OutcomeFail && r.Mode != policy.ModeBlock {
			lines = append(lines, "  "+r.Message())
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nwarnings and observations:\n%s\n", strings.Join(lines, "\n"))
	}
}

// parsePolicyFile reads and parses a policy file with its key files and exception files,
// read relative to it as the gateway reads them.
func parsePolicyFile(file string) (*policy.Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return policy.ParseWith(data, gate.FileOptions(file))
}

// problemsOf lists a parse error's problems: each validation problem with its path, or the
// error itself; none for nil.
func problemsOf(err error) []policy.Problem {
	var ve *policy.ValidationError
	switch {
	case errors.As(err, &ve):
		return ve.Problems
	case err != nil:
		return []policy.Problem{{Message: err.Error()}}
	}
	return nil
}
