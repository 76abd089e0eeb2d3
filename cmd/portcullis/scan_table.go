package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/portcullis-dev/portcullis/scan/match"
)

// printScanTable writes the scan of targets for people. Every string that comes from the
// image (or the registry) goes through printable, so that no file name, package, excerpt
// or reason can move the cursor, rewrite a line or change the terminal's state.
func printScanTable(w io.Writer, ref, digest string, targets []scanTarget) {
	fmt.Fprintf(w, "image:    %s\ndigest:   %s\n", printable(ref), printable(digest))
	for _, t := range targets {
		if t.Platform != "" {
			fmt.Fprintf(w, "\nplatform: %s (%s)\n", printable(t.Platform), printable(t.Digest))
		}
		r := t.Report
		fmt.Fprintf(w, "packages: %d (%d not checkable), database %s\n", r.Packages, r.Unchecked, printable(r.DBRevision))
		if t.Incomplete {
			fmt.Fprintf(w, "INCOMPLETE: %s\n", printable(strings.Join(r.Reasons, "; ")))
		}
		if r.OSUnknown {
			fmt.Fprintf(w, "OS UNKNOWN: %s\n", printable(r.OSUnknownReason))
		}
		for _, m := range r.Mismatched {
			fmt.Fprintf(w, "MISMATCH: %s\n", printable(m.String()))
		}
		if t.RunsAsRoot {
			fmt.Fprintf(w, "runs as root: %s\n", printable(t.RootReason))
		}
		for _, s := range t.Secrets {
			fmt.Fprintf(w, "secret: %s\n", printable(s.describe()))
		}
		if t.SecretsOmitted > 0 {
			fmt.Fprintf(w, "secrets: %d more in layer files, not listed\n", t.SecretsOmitted)
		}
		findings := append([]match.Finding(nil), r.Findings...)
		sort.SliceStable(findings, func(i, j int) bool { return findings[i].Severity > findings[j].Severity })
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "\nSEVERITY\tID\tPACKAGE\tINSTALLED\tFIXED")
		for _, f := range findings {
			fixed := f.Fixed
			switch {
			case f.Undecided != "":
				fixed = "(undecided)"
			case fixed == "":
				fixed = "(no fix)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Severity, printable(f.ID), printable(f.Package.Name), printable(f.Package.Version), printable(fixed))
		}
		tw.Flush()
		for _, f := range findings {
			if f.Undecided != "" {
				fmt.Fprintf(w, "UNDECIDED: %s %s: %s\n", printable(f.ID), printable(f.Package.Name), printable(f.Undecided))
			}
		}
		fmt.Fprintf(w, "%d finding(s)\n", len(findings))
	}
}

// printable returns s with everything a terminal would act on rather than show escaped, Go
// style: C0 and C1 control characters, DEL, tabs and line breaks ("\x1b", "\n"), bytes
// that are not UTF-8 ("\xff"), bidirectional and other format characters that reorder or
// hide text ("\u202e"), and the backslash itself ("\\"), so that the escaped form cannot
// be forged. Everything else is kept as it is.
func printable(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}
