package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/portcullis-dev/portcullis/mirror"
)

const mirrorImportHelp = `Usage: portcullis mirror import --bundle DIR --key cosign.pub --gateway URL [flags]

Verifies the bundle (signature, every chunk, the layout) and, for a delta (collect --have),
confirms through the gateway that every manifest it left out is on-prem, before writing
anything; then pushes it THROUGH THE GATEWAY: blobs, then manifests by digest (no tag is published: quarantine),
then, per image, asks the gateway's policy about a pull and pushes the tag; an image the
gateway refuses stays by digest only. A tag that already points elsewhere is drift and is
not moved. A journal (default DIR.import-journal.jsonl) makes an interrupted import resume
and a second run change nothing.

Exit status: 0 every tag published, 3 some images refused (see the report), 1 error.

Example:
  portcullis mirror import --bundle /media/usb/bundle --key cosign.pub \
    --gateway https://portcullis.internal --report import-report.json

Flags:
`

func runMirrorImport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("portcullis mirror import")
	bundle := fs.String("bundle", "", "bundle directory")
	key := fs.String("key", "", "public key the bundle manifest is signed with (cosign.pub)")
	gw := fs.String("gateway", "", "the portcullis gateway: https://host[:port] (http:// or --insecure for plain HTTP)")
	insecure := fs.Bool("insecure", false, "reach the gateway over plain HTTP")
	report := fs.String("report", "", "write the per-image report as JSON to this file")
	journal := fs.String("journal", "", "journal file (default: next to the bundle, DIR.import-journal.jsonl)")
	workdir := fs.String("workdir", "", "directory for the verified layout while importing (default: the system temp dir)")
	vdbDir := fs.String("vulndb-dir", envDBDir(os.Getenv), "import the bundle's vulnerability database into this directory, the gateway's (default $PORTCULLIS_VULNDB, else $PORTCULLIS_DATA_DIR/vulndb)")
	force := fs.Bool("force", false, "import the bundle's vulnerability database even when it is older than the one in --vulndb-dir")
	if status, ok := parseFlags(fs, mirrorImportHelp, args, stdout, stderr); !ok {
		return status
	}
	usage := usageFor("mirror import", stderr)
	if *bundle == "" || *key == "" || *gw == "" {
		return usage("--bundle, --key and --gateway are required")
	}
	host := strings.TrimSuffix(*gw, "/")
	if h, ok := strings.CutPrefix(host, "http://"); ok {
		host, *insecure = h, true
	}
	host = strings.TrimPrefix(host, "https://")
	if host == "" || strings.Contains(host, "/") {
		return usage("--gateway: want https://host[:port], got %q", *gw)
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "portcullis mirror import: %v\n", err); return 1 }
	pemBytes, err := os.ReadFile(*key)
	if err != nil {
		return fail(err)
	}
	v, err := mirror.LoadVerifier(pemBytes)
	if err != nil {
		return fail(err)
	}
	ctx, stop := signalContext()
	defer stop()
	progress, wait := mirrorProgress(stderr)
	opts := mirror.ImportOptions{
		Gateway: host, Insecure: *insecure, Journal: *journal, WorkDir: *workdir,
		Keychain: authn.DefaultKeychain, Progress: progress,
	}
	if *vdbDir != "" {
		opts.VulnDB = bundleDBImporter(*vdbDir, *force, stderr)
	}
	rep, err := mirror.Import(ctx, *bundle, v, opts)
	wait()
	if err != nil {
		return fail(err)
	}
	if *report != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fail(err)
		}
		if err := os.WriteFile(*report, append(data, '\n'), 0o644); err != nil {
			return fail(err)
		}
	}
	if d := rep.VulnDB; d != nil {
		fmt.Fprintf(stdout, "vulnerability database %s: %s\n", d.Status, d.Message)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTAG\tDIGEST\tVERDICT\tMESSAGE")
	for _, r := range rep.Images {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Tag, r.Digest, r.Verdict, r.Message)
	}
	tw.Flush()
	refused := rep.Refused()
	fmt.Fprintf(stdout, "%d images: %d published, %d not published (quarantine: see the report)\n", len(rep.Images), len(rep.Images)-refused, refused)
	if refused > 0 {
		return 3
	}
	return 0
}
