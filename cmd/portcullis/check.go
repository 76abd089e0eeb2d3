package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/portcullis-dev/portcullis/proxy"
)

const checkHelp = `Usage: portcullis check [flags] IMAGE

Asks the gateway what it decides for IMAGE, exactly as it would for a pull (or, with
--action push, a push) through the address in IMAGE: the verdict, every rule's outcome,
warnings with the date each starts to block, remediation deadlines, exceptions in force
(owner, last day) and what to change. Run it in CI right after "docker push": docker
prints none of the gateway's warnings.

IMAGE is the reference as pushed: HOST[:PORT]/REPOSITORY:TAG or HOST[:PORT]/REPOSITORY@DIGEST.
Credentials come from the docker config ("docker login HOST"), and credential helpers,
exactly as docker push used them; the gateway checks them against the upstream registry
like a pull, so only a client that may pull the image learns anything about it.

Exit status:
  0  allowed (with warnings, unless --fail-on warn)
  1  denied (or warned, with --fail-on warn)
  2  usage error
  3  could not decide: the gateway could not check the image (its answer says what is
     missing), the image or the gateway could not be reached, or the credentials were
     refused

Formats (--format):
  table   for people (default)
  json    the decisions API's JSON, as the gateway sent it
  github  GitHub Actions annotations (::error, ::warning, ::notice lines)
  gitlab  GitLab code quality report (JSON), for artifacts:reports:codequality
  sarif   SARIF 2.1.0, for code scanning
With --output FILE the format is written to FILE and the table still to stdout.

Example:
  docker push registry.example/team/app:1.4.2
  portcullis check --format gitlab --output gl-code-quality-report.json registry.example/team/app:1.4.2

Flags:
`

// Exit statuses of check.
const (
	checkAllowed   = 0
	checkDenied    = 1
	checkUsage     = 2
	checkUndecided = 3
)

// checkOptions are check's flags.
type checkOptions struct {
	action, format, output, failOn, source string
	insecure                               bool
	timeout                                time.Duration
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are printed below, once
	usage := func(w io.Writer) {
		fmt.Fprint(w, checkHelp)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fs.Usage = func() {}
	var o checkOptions
	fs.StringVar(&o.action, "action", "pull", "the request to decide on: pull or push")
	fs.StringVar(&o.format, "format", "table", "output format: table, json, github, gitlab or sarif")
	fs.StringVar(&o.output, "output", "", "write the format to `FILE` instead of stdout (the table still goes to stdout)")
	fs.StringVar(&o.failOn, "fail-on", "deny", "exit 1 from this verdict on: deny or warn")
	fs.StringVar(&o.source, "source", "Dockerfile", "the file that gitlab and sarif findings point at (`PATH` in the repository)")
	fs.BoolVar(&o.insecure, "insecure", false, "talk plain HTTP to the gateway")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long (a first pull may wait for a scan)")
	image, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return 0
	case errors.Is(err, errNoImage):
		usage(stderr)
		return checkUsage
	case err != nil:
		fmt.Fprintf(stderr, "portcullis check: %v\n\nRun \"portcullis check -h\" for help.\n", err)
		return checkUsage
	}
	if msg := o.validate(image); msg != "" {
		fmt.Fprintf(stderr, "portcullis check: %s\n\nRun \"portcullis check -h\" for help.\n", msg)
		return checkUsage
	}
	opts := []name.Option{name.StrictValidation}
	if o.insecure {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis check: IMAGE %q: %v (name a tag or a digest: HOST/REPOSITORY:TAG or HOST/REPOSITORY@sha256:...)\n", image, err)
		return checkUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	raw, rep, err := askGateway(ctx, ref, o.action)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis check: %s: could not decide: %v\n", image, err)
		return checkUndecided
	}
	if err := writeCheck(stdout, o, image, raw, rep); err != nil {
		fmt.Fprintf(stderr, "portcullis check: %v\n", err)
		return checkUndecided
	}
	return checkExit(rep, o.failOn)
}

// parseInterspersed parses flags before and after the one argument, IMAGE.
func parseInterspersed(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() == 0 {
		return "", errNoImage
	}
	image := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("one IMAGE at a time; unexpected %q", fs.Args())
	}
	return image, nil
}

// errNoImage is a check command line without IMAGE.
var errNoImage = errors.New("IMAGE is missing")

// validate returns what is wrong with the flags, "" when nothing is.
func (o checkOptions) validate(image string) string {
	switch {
	case o.action != "pull" && o.action != "push":
		return fmt.Sprintf("--action %q: want pull or push", o.action)
	case !oneOfStrings(o.format, "table", "json", "github", "gitlab", "sarif"):
		return fmt.Sprintf("--format %q: want table, json, github, gitlab or sarif", o.format)
	case o.failOn != "deny" && o.failOn != "warn":
		return fmt.Sprintf("--fail-on %q: want deny or warn", o.failOn)
	case o.timeout <= 0:
		return "--timeout must be positive"
	case !strings.Contains(image, "/"):
		return fmt.Sprintf("IMAGE %q names no registry: give it as pushed, HOST[:PORT]/REPOSITORY:TAG", image)
	}
	return ""
}

func oneOfStrings(s string, set ...string) bool {
	for _, x := range set {
		if s == x {
			return true
		}
	}
	return false
}

// maxReportBytes bounds the gateway's answer.
const maxReportBytes = 16 << 20

// askGateway asks the decisions API of ref's registry about ref, authenticating as docker
// push did: credentials from the docker config, the registry's challenge answered by
// go-containerregistry's transport (basic, or a token for pull access to the repository).
func askGateway(ctx context.Context, ref name.Reference, action string) ([]byte, *proxy.DecisionReport, error) {
	repo := ref.Context()
	auth, err := authn.DefaultKeychain.Resolve(repo)
	if err != nil {
		return nil, nil, fmt.Errorf("reading credentials for %s from the docker config: %w", repo.RegistryStr(), err)
	}
	tr, err := transport.NewWithContext(ctx, repo.Registry, auth, remote.DefaultTransport, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, nil, explainAuth(repo, err)
	}
	sep := ":"
	if _, ok := ref.(name.Digest); ok {
		sep = "@"
	}
	u := url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: proxy.DecisionsPath + repo.RepositoryStr() + sep + ref.Identifier(),
		RawQuery: url.Values{"action": {action}}.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, nil, explainAuth(repo, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReportBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the gateway's answer: %w", err)
	}
	if len(body) > maxReportBytes {
		return nil, nil, fmt.Errorf("the gateway's answer is larger than %d bytes", maxReportBytes)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, apiError(repo, ref, resp.StatusCode, body)
	}
	var rep proxy.DecisionReport
	if err := json.Unmarshal(body, &rep); err != nil || rep.Verdict == "" {
		return nil, nil, fmt.Errorf("%s answered something that is not a decision (is it a portcullis gateway?)", repo.RegistryStr())
	}
	return body, &rep, nil
}

// explainAuth says what a failed authentication means for the user.
func explainAuth(repo name.Repository, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%s refused the credentials for %s (run \"docker login %s\" with an account that may pull it): %w",
			repo.RegistryStr(), repo.RepositoryStr(), repo.RegistryStr(), err)
	}
	return fmt.Errorf("reaching %s: %w", repo.RegistryStr(), err)
}

// apiError turns a refusal of the decisions API into a message.
func apiError(repo name.Repository, ref name.Reference, status int, body []byte) error {
	var doc struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	msg := fmt.Sprintf("HTTP %d", status)
	if json.Unmarshal(body, &doc) == nil && len(doc.Errors) > 0 {
		msg = printable(doc.Errors[0].Code + ": " + doc.Errors[0].Message)
	} else if status == http.StatusNotFound {
		return fmt.Errorf("%s does not serve the decisions API (%s): is it a portcullis gateway?", repo.RegistryStr(), proxy.DecisionsPath)
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%s refused the credentials for %s (run \"docker login %s\" with an account that may pull it): %s",
			repo.RegistryStr(), repo.RepositoryStr(), repo.RegistryStr(), msg)
	case http.StatusNotFound:
		return fmt.Errorf("%s is not in the registry: %s", ref, msg)
	}
	return errors.New(msg)
}

// checkExit is the exit status for rep with --fail-on failOn.
func checkExit(rep *proxy.DecisionReport, failOn string) int {
	switch {
	case rep.Undecided != nil && rep.Undecided.Unavailable:
		return checkUndecided
	case rep.Verdict == "deny" && onlyCouldNotCheck(rep):
		return checkUndecided
	case rep.Verdict == "deny":
		return checkDenied
	case rep.Verdict == "warn" && failOn == "warn":
		return checkDenied
	}
	return checkAllowed
}

// onlyCouldNotCheck reports whether every blocking failure of rep is a check that could
// not run: the gateway refuses, but not for anything in the image.
func onlyCouldNotCheck(rep *proxy.DecisionReport) bool {
	n := 0
	for _, r := range rep.Results {
		if r.Outcome == "fail" && r.Mode == "block" {
			if r.CouldNotCheck == "" {
				return false
			}
			n++
		}
	}
	return n > 0
}

// writeCheck writes the report in the format asked for: to --output when given (the
// table then still goes to stdout), else to stdout.
func writeCheck(stdout io.Writer, o checkOptions, image string, raw []byte, rep *proxy.DecisionReport) error {
	render := func(w io.Writer) error {
		switch o.format {
		case "json":
			_, err := w.Write(raw)
			return err
		case "github":
			return writeGitHub(w, image, rep)
		case "gitlab":
			return writeJSONDoc(w, gitlabReport(image, o.source, rep))
		case "sarif":
			return writeJSONDoc(w, sarifOfDecision(image, o.source, rep))
		}
		return printCheckTable(w, image, rep)
	}
	if o.output == "" {
		return render(stdout)
	}
	f, err := os.Create(o.output)
	if err != nil {
		return err
	}
	if err := render(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if o.format == "table" {
		return nil
	}
	return printCheckTable(stdout, image, rep)
}

// writeJSONDoc writes v as indented JSON.
func writeJSONDoc(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
