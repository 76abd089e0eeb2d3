package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// MaxExceptionFileBytes bounds an exception file. A loader's ReadFile
// should read at least one byte more, so that a larger file is reported
// rather than silently truncated.
const MaxExceptionFileBytes = 1 << 20

// maxExceptionFiles bounds how many files exceptionFiles may match.
const maxExceptionFiles = 1000

// exception is a compiled Exception.
type exception struct {
	Exception
	repo glob
	// set while parsing, for messages
	node      *yaml.Node
	fields    map[string]field
	scope     map[string]field
	ruleItems []item
	order     int
}

// The fields of an exception and of its scope, for messages.
var (
	exceptionKeys = []string{"id", "scope", "reason", "owner", "approvedBy", "created", "expires",
		"severity", "compensatingControls", "closure", "ticket", "extends", "vex"}
	requiredExceptionKeys = []string{"id", "scope", "reason", "owner", "approvedBy", "created", "expires", "closure"}
	scopeKeys             = []string{"repository", "tag", "digest", "rules", "vulnerabilities", "package"}
	vexKeys               = []string{"status", "justification", "impact", "action"}
)

var (
	// digestRE is a sha256 or sha512 manifest digest.
	digestRE = regexp.MustCompile(`^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$`)
	cveRE    = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	ghsaRE   = regexp.MustCompile(`^GHSA(-[23456789cfghjmpqrvwx]{4}){3}$`)
	// osvIDRE is the general shape of an OSV id: an upper-case prefix
	// naming the database, a dash, and the database's own id
	// (GO-2024-1234, PYSEC-2021-1, RUSTSEC-2021-0001, DSA-5000-1, ...).
	osvIDRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[A-Za-z0-9][A-Za-z0-9._:-]*$`)
)

// readExceptions reads a list of exceptions at path (the policy's
// exceptions, or an exception file) into p.
func (r *reader) readExceptions(p *Policy, prefix string, n *yaml.Node, file string) {
	for i, c := range r.list(prefix, n) {
		if e, ok := r.readException(fmt.Sprintf("%s[%d]", prefix, i), c); ok {
			e.File, e.order = file, r.order
			p.exceptions = append(p.exceptions, e)
		}
	}
}

// readException reads one exception. ok is false when n is not a mapping.
func (r *reader) readException(path string, n *yaml.Node) (e exception, ok bool) {
	fields, ok := r.mapping(path, n)
	if !ok {
		return e, false
	}
	e.Source, e.node, e.fields = path, n, map[string]field{}
	for _, f := range fields {
		e.fields[f.key] = f
		switch f.key {
		case "id":
			if s, ok := r.text(f); ok {
				e.ID = s
				r.checkName(f.path, f.value, s)
			}
		case "extends":
			if s, ok := r.text(f); ok {
				e.Extends = s
			} else if !isNull(r.resolve(f.value)) {
				r.add(f.path, f.value, "empty: give the id of the exception this one extends, or remove the field")
			}
		case "scope":
			r.readScope(&e, f)
		case "reason":
			e.Reason, _ = r.text(f)
		case "owner":
			e.Owner, _ = r.text(f)
		case "approvedBy":
			e.ApprovedBy, _ = r.text(f)
		case "closure":
			e.Closure, _ = r.text(f)
		case "ticket":
			if s, ok := r.text(f); ok {
				e.Ticket = s
			} else if !isNull(r.resolve(f.value)) {
				r.add(f.path, f.value, "empty: give the ticket or remove the field")
			}
		case "created":
			e.Created = r.date(f.path, f.value)
		case "expires":
			e.Expires = r.date(f.path, f.value)
		case "severity":
			if s, ok := r.str(f.path, f.value); ok {
				if !oneOf(s, severityNames) {
					r.add(f.path, f.value, "unknown severity %q (want %s)", s, strings.Join(severityNames, ", "))
					continue
				}
				e.Severity = s
			}
		case "vex":
			r.readVEX(&e, f)
		case "compensatingControls":
			for _, it := range r.strList(f.path, f.value) {
				if strings.TrimSpace(it.value) == "" {
					r.add(it.path, it.node, "empty: say what limits the risk")
					continue
				}
				e.CompensatingControls = append(e.CompensatingControls, strings.TrimSpace(it.value))
			}
		default:
			r.add(f.path, f.keyN, "unknown field: exceptions take %s (line %d)", andList(exceptionKeys), f.keyN.Line)
		}
	}
	for _, key := range requiredExceptionKeys {
		f, ok := e.fields[key]
		switch {
		case !ok:
			r.add(path+"."+key, n, "required")
		case key == "scope" || key == "created" || key == "expires":
			if isNull(r.resolve(f.value)) {
				r.add(f.path, f.value, "required")
			}
		default:
			// text fields: null or blank is missing
			if v := r.resolve(f.value); isNull(v) || (v.Kind == yaml.ScalarNode && strings.TrimSpace(v.Value) == "") {
				r.add(f.path, f.value, "required")
			}
		}
	}
	return e, true
}

// readVEX reads an exception's vex field: a status, and for not_affected
// a justification or an impact statement (or both), as OpenVEX requires.
func (r *reader) readVEX(e *exception, vf field) {
	fields, ok := r.mapping(vf.path, vf.value)
	if !ok {
		return
	}
	v := &ExceptionVEX{}
	e.VEX = v
	given := map[string]field{}
	for _, f := range fields {
		given[f.key] = f
		switch f.key {
		case "status":
			s, ok := r.str(f.path, f.value)
			switch {
			case !ok:
			case s == "fixed":
				r.add(f.path, f.value, "a fixed vulnerability needs no exception: remove the exception once the images in scope are fixed")
			case !oneOf(s, vexStatuses):
				r.add(f.path, f.value, "unknown status %q (want %s)", s, orList(vexStatuses))
			default:
				v.Status = s
			}
		case "justification":
			if s, ok := r.str(f.path, f.value); ok {
				if !oneOf(s, vexJustifications) {
					r.add(f.path, f.value, "unknown justification %q (want %s)", s, orList(vexJustifications))
					continue
				}
				v.Justification = s
			}
		case "impact":
			if s, ok := r.text(f); ok {
				v.Impact = s
			} else {
				r.add(f.path, f.value, "empty: say why the images are not affected, or remove the field")
			}
		case "action":
			if s, ok := r.text(f); ok {
				v.Action = s
			} else {
				r.add(f.path, f.value, "empty: say what is done about the vulnerabilities, or remove the field")
			}
		default:
			r.add(f.path, f.keyN, "unknown field: vex takes %s (line %d)", andList(vexKeys), f.keyN.Line)
		}
	}
	if f, ok := given["status"]; !ok || isNull(r.resolve(f.value)) {
		path, n := vf.path+".status", vf.value
		if ok {
			path, n = f.path, f.value
		}
		r.add(path, n, "required (want %s)", orList(vexStatuses))
		return
	}
	if v.Status == "" {
		return
	}
	if v.Status != VEXNotAffected {
		for _, kw := range [][2]string{{"justification", "a justification"}, {"impact", "an impact statement"}} {
			if f, ok := given[kw[0]]; ok {
				what := kw[1]
				r.add(f.path, f.keyN, "only a not_affected statement takes %s (it says why the images are not affected); this one is %s", what, v.Status)
			}
		}
		return
	}
	_, hasJ := given["justification"]
	_, hasI := given["impact"]
	if !hasJ && !hasI {
		r.add(vf.path, vf.value, "status not_affected needs a justification (%s) or an impact statement (impact) saying why the images are not affected",
			orList(vexJustifications))
	}
}

// orList joins "a", "a or b", "a, b or c".
func orList(s []string) string {
	if len(s) <= 1 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// text reads a scalar as trimmed text; ok is false when it is absent,
// null or blank (the caller decides whether that is a problem).
func (r *reader) text(f field) (string, bool) {
	s, ok := r.str(f.path, f.value)
	s = strings.TrimSpace(s)
	return s, ok && s != ""
}

// readScope reads an exception's scope.
func (r *reader) readScope(e *exception, sf field) {
	fields, ok := r.mapping(sf.path, sf.value)
	if !ok {
		return
	}
	e.scope = map[string]field{}
	s := &e.Scope
	for _, f := range fields {
		e.scope[f.key] = f
		switch f.key {
		case "repository":
			if v, ok := r.str(f.path, f.value); ok {
				if msg := exceptionRepoProblem(v); msg != "" {
					r.add(f.path, f.value, "%s", msg)
					continue
				}
				s.Repository, e.repo = v, compileGlob(v)
			}
		case "tag":
			if v, ok := r.str(f.path, f.value); ok {
				if !tagNameRE.MatchString(v) {
					r.add(f.path, f.value, "%q is not a valid tag name", v)
					continue
				}
				s.Tag = v
			}
		case "digest":
			if v, ok := r.str(f.path, f.value); ok {
				if !digestRE.MatchString(v) {
					r.add(f.path, f.value, "invalid digest %q (want sha256: and 64 lower-case hex digits, or sha512: and 128)", v)
					continue
				}
				s.Digest = v
			}
		case "rules":
			r.notEmpty(f)
			for _, it := range r.strList(f.path, f.value) {
				if oneOf(it.value, s.Rules) {
					r.add(it.path, it.node, "%q is listed twice", it.value)
					continue
				}
				s.Rules = append(s.Rules, it.value)
				e.ruleItems = append(e.ruleItems, it)
			}
		case "vulnerabilities":
			r.notEmpty(f)
			for _, it := range r.strList(f.path, f.value) {
				if msg := vulnIDProblem(it.value); msg != "" {
					r.add(it.path, it.node, "%s", msg)
					continue
				}
				if oneOf(it.value, s.Vulnerabilities) {
					r.add(it.path, it.node, "%q is listed twice", it.value)
					continue
				}
				s.Vulnerabilities = append(s.Vulnerabilities, it.value)
			}
		case "package":
			if v, ok := r.str(f.path, f.value); ok {
				if v == "" || strings.IndexFunc(v, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }) >= 0 {
					r.add(f.path, f.value, "want a package name such as openssl, without spaces")
					continue
				}
				s.Package = v
			}
		default:
			r.add(f.path, f.keyN, "unknown field: a scope takes %s (line %d)", andList(scopeKeys), f.keyN.Line)
		}
	}
	if _, ok := e.scope["repository"]; !ok {
		r.add(sf.path+".repository", sf.value, "required")
	} else if f := e.scope["repository"]; isNull(r.resolve(f.value)) {
		r.add(f.path, f.value, "required")
	}
	_, hasTag := e.scope["tag"]
	_, hasDigest := e.scope["digest"]
	if hasTag && hasDigest {
		r.add(sf.path, sf.value, "give tag or digest, not both")
	}
	_, hasRules := e.scope["rules"]
	_, hasVulns := e.scope["vulnerabilities"]
	if !hasRules && !hasVulns {
		r.add(sf.path, sf.value, "needs rules (the ids of the rules it covers) or vulnerabilities")
	}
}

// exceptionRepoProblem says why pattern cannot scope an exception: it is
// not a valid glob, or its first segment has a wildcard, so that it would
// reach beyond one team's namespace. "" when it is fine.
func exceptionRepoProblem(pattern string) string {
	if err := ValidGlob(pattern); err != nil {
		return err.Error()
	}
	segs := strings.Split(pattern, "/")
	if !strings.ContainsAny(segs[0], "*?") {
		return ""
	}
	all := true
	for _, s := range segs {
		if strings.Trim(s, "*") != "" {
			all = false
		}
	}
	if all {
		return fmt.Sprintf("%q would cover the whole registry; scope an exception to one team's repositories", pattern)
	}
	return fmt.Sprintf("%q has a wildcard in its first segment, so it reaches into other teams' repositories; scope an exception to one team's repositories (such as team-a/**)", pattern)
}

// vulnIDProblem says why id is not a vulnerability id, or "".
func vulnIDProblem(id string) string {
	switch {
	case strings.HasPrefix(id, "CVE-"):
		if !cveRE.MatchString(id) {
			return fmt.Sprintf("%q is not a CVE id (want CVE-YYYY-NNNN, such as CVE-2026-1234)", id)
		}
	case strings.HasPrefix(id, "GHSA-"):
		if !ghsaRE.MatchString(id) {
			return fmt.Sprintf("%q is not a GHSA id (want GHSA-xxxx-xxxx-xxxx: three groups of four of 23456789cfghjmpqrvwx)", id)
		}
	case !osvIDRE.MatchString(id):
		return fmt.Sprintf("%q is not a vulnerability id (want CVE-2026-1234, GHSA-xxxx-xxxx-xxxx or another OSV id such as GO-2026-1234)", id)
	}
	return ""
}

// readExceptionFiles expands the exceptionFiles patterns and reads the
// exceptions of every file they match, each file once.
func (r *reader) readExceptionFiles(p *Policy, f field) {
	r.notEmpty(f)
	items := r.strList(f.path, f.value)
	if len(items) == 0 {
		return
	}
	if r.glob == nil || r.readFile == nil {
		r.add(f.path, f.value, "exceptionFiles needs a policy loaded from a file (portcullis reads them relative to the policy file)")
		return
	}
	seen := map[string]bool{}
	for i, it := range items {
		pattern := strings.TrimSpace(it.value)
		switch {
		case pattern == "":
			r.add(it.path, it.node, "empty: want a file name or a pattern such as exceptions/*.yaml")
			continue
		case strings.Contains(pattern, "**"):
			r.add(it.path, it.node, "%q: \"**\" is not supported; a pattern matches within one directory (such as exceptions/*.yaml)", pattern)
			continue
		}
		if _, err := path.Match(pattern, ""); err != nil {
			r.add(it.path, it.node, "invalid pattern %q: %v", pattern, err)
			continue
		}
		names, err := r.glob(pattern)
		if err != nil {
			r.add(it.path, it.node, "expanding %s: %v", pattern, err)
			continue
		}
		if len(names) == 0 && !strings.ContainsAny(pattern, `*?[\`) {
			// A plain file name that matches nothing: reading it says why.
			names = []string{pattern}
		}
		sort.Strings(names)
		for _, name := range names {
			if seen[name] {
				continue
			}
			seen[name] = true
			if len(seen) > maxExceptionFiles {
				r.add(it.path, it.node, "matches more than %d files", maxExceptionFiles)
				return
			}
			r.readExceptionFile(p, fmt.Sprintf("exceptionFiles[%d]", i), it.node, name)
		}
	}
}

// readExceptionFile reads the exceptions of one file that the pattern at
// itemPath matched. Problems inside the file carry its name and its lines.
func (r *reader) readExceptionFile(p *Policy, itemPath string, itemNode *yaml.Node, name string) {
	data, err := r.readFile(name)
	if err == nil && len(data) > MaxExceptionFileBytes {
		err = fmt.Errorf("larger than %d KiB", MaxExceptionFileBytes>>10)
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		r.add(itemPath, itemNode, "reading %s: %v", name, err)
		return
	}
	r.keyFiles = append(r.keyFiles, keyFileRead{name: name, data: data})
	prefix := fmt.Sprintf("%s (%s)", itemPath, name)

	// Problems in the file are located in it, and the file has its own walk
	// budget.
	r.files++
	file, order, visited, tooLarge := r.file, r.order, r.visited, r.tooLarge
	r.file, r.order, r.visited, r.tooLarge = name, r.files, 0, false
	defer func() { r.file, r.order, r.visited, r.tooLarge = file, order, visited, tooLarge }()

	root, err := decodeDocument(data)
	if err != nil {
		sp := syntaxProblem(err)
		if errors.Is(err, errNotOneDocument) {
			sp.Message = "yaml: an exception file holds one YAML document (a list of exceptions), found more"
		}
		r.addLine(prefix, sp.Line, "%s", sp.Message)
		return
	}
	r.readExceptions(p, prefix, root, name)
}

// readExceptionRules reads the top-level exceptionRules.
func (r *reader) readExceptionRules(p *Policy, f field) {
	fields, ok := r.mapping(f.path, f.value)
	if !ok {
		return
	}
	x := &p.exceptionRules
	var minField, maxField *field
	for i, c := range fields {
		switch c.key {
		case "maxDays":
			days, ok := r.mapping(c.path, c.value)
			if !ok {
				continue
			}
			for _, d := range days {
				if !oneOf(d.key, severityNames) {
					r.add(d.path, d.keyN, "unknown severity (want %s)", strings.Join(severityNames, ", "))
					continue
				}
				if n, ok := r.integer(d.path, d.value); ok {
					if n < 1 || n > 3650 {
						r.add(d.path, d.value, "want 1 to 3650 days, got %d", n)
						continue
					}
					x.MaxDays[d.key] = n
				}
			}
		case "reminderDays", "reminderMinDays":
			n, ok := r.integer(c.path, c.value)
			if !ok {
				continue
			}
			if n < 0 || n > 365 {
				r.add(c.path, c.value, "want 0 to 365 days, got %d", n)
				continue
			}
			if c.key == "reminderDays" {
				x.ReminderDays, maxField = n, &fields[i]
			} else {
				x.ReminderMinDays, minField = n, &fields[i]
			}
		default:
			r.add(c.path, c.keyN, "unknown field: exceptionRules take maxDays, reminderDays and reminderMinDays (line %d)", c.keyN.Line)
		}
	}
	if x.ReminderMinDays > x.ReminderDays {
		at := minField
		if at == nil {
			at = maxField
		}
		r.add(at.path, at.value, "reminderMinDays (%d) must not be more than reminderDays (%d)", x.ReminderMinDays, x.ReminderDays)
	}
}
