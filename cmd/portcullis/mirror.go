package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/portcullis-dev/portcullis/gate"
	"github.com/portcullis-dev/portcullis/mirror"
)

const mirrorHelp = `Usage: portcullis mirror COMMAND [flags]

Carry images to an air-gapped site (docs/MIRROR.md).

Commands:
  collect        resolve a mirror file and write a signed, chunked bundle (connected side)
  verify         check a bundle's signature, chunks and layout (disconnected side)
  inventory      list the digests an on-prem registry holds, for delta bundles
  import         verify a bundle and push it through the gateway under its policy (quarantine)
  client-config  write containerd hosts.toml and registries.conf pulling source names from the mirror

Run "portcullis mirror COMMAND -h" for a command's flags and an example.
`

const mirrorCollectHelp = `Usage: portcullis mirror collect --file mirror.yaml --out DIR --key cosign.key [flags]

Resolves every tag of the mirror file to a digest once, copies manifests, indexes, blobs and
referrers byte for byte into an OCI layout, and writes it as zstd chunks with a bundle
manifest signed with --key (a cosign.key, whose password is read from $COSIGN_PASSWORD, or an
unencrypted PEM private key). The signature verifies with
  cosign verify-blob --key cosign.pub --signature DIR/bundle.json.sig \
    --insecure-ignore-tlog=true DIR/bundle.json

Where the mirror file gives publisher authorities, every pinned image (an index by its own
digest) must carry a cosign signature by one of them (.sig tag or sigstore bundle
referrer); otherwise collect writes nothing and names the image, its digest and the
authorities it lacks, or, with --unverified leave-out, leaves the image out and lists it in
bundle.json. --dry-run shows each image's verification.

Example:
  COSIGN_PASSWORD=... portcullis mirror collect --file mirror.yaml --out /media/usb/bundle \
    --key cosign.key --chunk-size 4GiB --have inventory.json

Flags:
`

const mirrorVerifyHelp = `Usage: portcullis mirror verify --bundle DIR --key cosign.pub [--extract LAYOUT]

Checks the bundle manifest's signature, then every chunk's size and SHA-256, then the
decompressed OCI layout (entry names, no links or devices, declared size, blob digests).
With --extract, also writes the verified layout into LAYOUT (a new or empty directory).

Example:
  portcullis mirror verify --bundle /media/usb/bundle --key cosign.pub

Flags:
`

const mirrorInventoryHelp = `Usage: portcullis mirror inventory --registry URL (--file mirror.yaml | --repository NAME...) --out inv.json

Lists the manifests and blobs the on-prem registry holds under the mirror file's mapped
names (or the repositories named), for "collect --have".

Example:
  portcullis mirror inventory --registry https://registry.internal --file mirror.yaml --out inv.json

Flags:
`

func runMirror(args []string, stdout, stderr io.Writer) int {
	return dispatch("mirror", mirrorHelp, map[string]subcommand{
		"collect": runMirrorCollect, "verify": runMirrorVerify, "inventory": runMirrorInventory,
		"import": runMirrorImport, "client-config": runMirrorClientConfig,
	}, args, stdout, stderr)
}

// mirrorProgress picks bars on a terminal and JSON lines otherwise.
func mirrorProgress(stderr io.Writer) (mirror.Progress, func()) {
	if dbIsTerminal(stderr) {
		b := mirror.NewBars(stderr)
		return b, b.Wait
	}
	return mirror.NewJSONLines(stderr), func() {}
}

func runMirrorCollect(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("portcullis mirror collect")
	file := fs.String("file", "", "mirror file (YAML)")
	out := fs.String("out", "", "bundle directory to create (must be new or empty)")
	key := fs.String("key", "", "signing key: cosign.key (password in $COSIGN_PASSWORD) or a PEM private key")
	chunk := fs.String("chunk-size", "128MiB", "largest chunk, e.g. 512MiB, 4GiB, 100MB or bytes")
	dry := fs.Bool("dry-run", false, "print the plan (images, digests, sizes) and write nothing")
	have := fs.String("have", "", "inventory of the on-prem registry: leave out what it holds")
	output := fs.String("output", "table", "plan format: table or json")
	vdb := fs.String("vulndb", "", "also carry this OSV export (zip archive or directory of records, as db import takes) as an OCI artifact")
	fsync := fs.Bool("fsync", false, "fsync every chunk, bundle.json and its signature before exiting, so the bundle survives a crash of this machine (without it the bundle is durable once the disk is unmounted or synced)")
	buffered := fs.Bool("buffered", false, "write the chunks through the page cache instead of with O_DIRECT (which sends them straight to the disk where the file system takes it); may be faster on a network file system")
	unverified := fs.String("unverified", "refuse", "an image failing publisher verification: refuse (write no bundle) or leave-out (carry the others, list it in bundle.json)")
	if status, ok := parseFlags(fs, mirrorCollectHelp, args, stdout, stderr); !ok {
		return status
	}
	usage := usageFor("mirror collect", stderr)
	size, err := parseSize(*chunk)
	if err != nil {
		return usage("--chunk-size: %v", err)
	}
	switch {
	case *file == "":
		return usage("--file is required")
	case !*dry && *out == "":
		return usage("--out is required (or --dry-run)")
	case !*dry && *key == "":
		return usage("--key is required (or --dry-run)")
	case *output != "table" && *output != "json":
		return usage("--output: want table or json")
	case *unverified != "refuse" && *unverified != "leave-out":
		return usage("--unverified: want refuse or leave-out")
	}
	leaveOut := *unverified == "leave-out"
	fail := func(err error) int { fmt.Fprintf(stderr, "portcullis mirror collect: %v\n", err); return 1 }
	f, err := readMirrorFile(*file)
	if err != nil {
		return fail(err)
	}
	var inv *mirror.Inventory
	if *have != "" {
		if inv, err = readInventory(*have); err != nil {
			return fail(err)
		}
	}
	sctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithCancelCause(sctx)
	defer cancel(nil)
	// The key is decrypted (scrypt, for a cosign.key) while the plan is resolved and the
	// blobs are fetched; a key that cannot be loaded stops the collect at once, and the
	// collect removes what it wrote.
	var signer *mirror.PendingSigner
	if !*dry {
		pemBytes, err := os.ReadFile(*key)
		if err != nil {
			return fail(err)
		}
		signer = mirror.LoadSignerAsync(pemBytes, []byte(os.Getenv("COSIGN_PASSWORD")))
		go func() {
			if _, err := signer.Wait(); err != nil {
				cancel(err)
			}
		}()
		fail = func(err error) int {
			if _, kerr := signer.Wait(); kerr != nil {
				err = kerr
			}
			fmt.Fprintf(stderr, "portcullis mirror collect: %v\n", err)
			return 1
		}
	}
	ropts := []remote.Option{remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("portcullis/" + version)}
	plan, err := mirror.Resolve(ctx, f, ropts...)
	if err != nil {
		return fail(err)
	}
	if *dry {
		printPlan(stdout, plan, inv, *output)
		if len(plan.Unverified) > 0 && !leaveOut {
			return fail(&mirror.UnverifiedError{Images: plan.Unverified})
		}
		return 0
	}
	if len(plan.Unverified) > 0 && !leaveOut {
		return fail(&mirror.UnverifiedError{Images: plan.Unverified})
	}
	wo := mirror.WriteOptions{ChunkSize: size, Have: inv, Remote: ropts, LeaveOutUnverified: leaveOut, Sync: *fsync, Buffered: *buffered}
	if *vdb != "" {
		tmp, err := os.MkdirTemp("", "portcullis-collect-vulndb-")
		if err != nil {
			return fail(err)
		}
		defer os.RemoveAll(tmp)
		if wo.VulnDB, err = bundleDB(*vdb, tmp, stderr); err != nil {
			return fail(err)
		}
	}
	progress, wait := mirrorProgress(stderr)
	wo.Progress = progress
	m, err := mirror.Write(ctx, plan, *out, signer, wo)
	wait()
	if err != nil {
		return fail(err)
	}
	var total int64
	for _, c := range m.Chunks {
		total += c.Size
	}
	fmt.Fprintf(stdout, "wrote %s: %d images, %d objects, %d chunks, %s compressed\n", *out, len(m.Images), m.Objects, len(m.Chunks), humanBytes(total))
	for _, u := range m.LeftOut {
		fmt.Fprintf(stdout, "left out: %s\n", u)
	}
	if m.VulnDB != nil {
		fmt.Fprintf(stdout, "vulnerability database: %d records, revision %s, newest record %s\n", m.VulnDB.Records, m.VulnDB.Revision, m.VulnDB.Newest.Format(time.RFC3339))
	}
	return 0
}

func printPlan(w io.Writer, plan *mirror.Plan, inv *mirror.Inventory, output string) {
	n, size := plan.Carried(inv)
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		doc := map[string]any{"images": plan.Images, "objects": n, "bytes": size}
		if len(plan.Unverified) > 0 {
			doc["unverified"] = plan.Unverified
		}
		_ = enc.Encode(doc)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTAG\tDIGEST\tPLATFORMS\tREFERRERS\tSIZE\tPUBLISHER")
	for _, img := range plan.Images {
		platforms := strings.Join(img.Platforms, ",")
		if img.AllPlatforms && len(img.Children) > 0 {
			platforms = "all: " + platforms
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", img.Name, img.Tag, img.Digest, platforms, len(img.Referrers), humanBytes(img.Size), publisherColumn(img.Publisher))
	}
	for _, u := range plan.Unverified {
		fmt.Fprintf(tw, "%s\t%s\t%s\t-\t-\t-\tUNVERIFIED\n", u.Name, u.Tag, u.Digest)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d images; the bundle would carry %d objects, %s before compression\n", len(plan.Images), n, humanBytes(size))
	for _, u := range plan.Unverified {
		fmt.Fprintf(w, "unverified: %s\n", u)
	}
}

// publisherColumn is the plan's PUBLISHER cell: the authorities whose signature verified
// and in which format, or "-" when the repository has no publisher authorities.
func publisherColumn(p *mirror.Publisher) string {
	if p == nil {
		return "-"
	}
	var parts []string
	for _, s := range p.Signatures {
		parts = append(parts, s.Authority+" ("+s.Format+")")
	}
	return "verified: " + strings.Join(parts, ", ")
}

func runMirrorVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("portcullis mirror verify")
	bundle := fs.String("bundle", "", "bundle directory")
	key := fs.String("key", "", "public key the bundle manifest is signed with (cosign.pub)")
	extract := fs.String("extract", "", "also write the verified OCI layout into this new or empty directory")
	if status, ok := parseFlags(fs, mirrorVerifyHelp, args, stdout, stderr); !ok {
		return status
	}
	usage := usageFor("mirror verify", stderr)
	if *bundle == "" || *key == "" {
		return usage("--bundle and --key are required")
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "portcullis mirror verify: %v\nportcullis mirror verify: the bundle in %s is REFUSED\n", err, *bundle)
		return 1
	}
	pemBytes, err := os.ReadFile(*key)
	if err != nil {
		return fail(err)
	}
	v, err := mirror.LoadVerifier(pemBytes)
	if err != nil {
		return fail(err)
	}
	progress, wait := mirrorProgress(stderr)
	var res *mirror.Verified
	if *extract != "" {
		res, err = mirror.Extract(*bundle, *extract, v, progress)
	} else {
		res, err = mirror.Verify(*bundle, v, progress)
	}
	wait()
	if err != nil {
		return fail(err)
	}
	m := res.Manifest
	kind := "full"
	if m.Delta != nil {
		kind = fmt.Sprintf("delta against %s's inventory of %s", m.Delta.Registry, m.Delta.InventoryCreated.Format("2006-01-02 15:04"))
	}
	fmt.Fprintf(stdout, "bundle %s verified: %s bundle created %s, %d images, %d objects in %d chunks\n",
		*bundle, kind, m.Created.Format("2006-01-02 15:04:05Z07:00"), len(m.Images), m.Objects, len(m.Chunks))
	return 0
}

func runMirrorInventory(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("portcullis mirror inventory")
	registry := fs.String("registry", "", "on-prem registry: https://host[:port], or http:// for plain HTTP")
	file := fs.String("file", "", "mirror file whose mapped names to list")
	var repos stringList
	fs.Var(&repos, "repository", "on-prem repository to list (repeatable)")
	out := fs.String("out", "", "inventory file to write")
	if status, ok := parseFlags(fs, mirrorInventoryHelp, args, stdout, stderr); !ok {
		return status
	}
	usage := usageFor("mirror inventory", stderr)
	if *registry == "" || *out == "" || (*file == "" && len(repos) == 0) {
		return usage("--registry, --out and --file or --repository are required")
	}
	host, insecure := strings.TrimPrefix(*registry, "https://"), strings.HasPrefix(*registry, "http://")
	host = strings.TrimSuffix(strings.TrimPrefix(host, "http://"), "/")
	fail := func(err error) int { fmt.Fprintf(stderr, "portcullis mirror inventory: %v\n", err); return 1 }
	if *file != "" {
		f, err := readMirrorFile(*file)
		if err != nil {
			return fail(err)
		}
		for _, s := range f.Sources {
			for _, r := range s.Repositories {
				repos = append(repos, f.MappedName(s, r))
			}
		}
	}
	ctx, stop := signalContext()
	defer stop()
	inv, err := mirror.TakeInventory(ctx, host, insecure, repos, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithUserAgent("portcullis/"+version))
	if err != nil {
		return fail(err)
	}
	data, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
		return fail(err)
	}
	n := 0
	for _, ds := range inv.Repositories {
		n += len(ds)
	}
	fmt.Fprintf(stdout, "wrote %s: %d repositories, %d digests\n", *out, len(inv.Repositories), n)
	return 0
}

func readMirrorFile(path string) (*mirror.File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	// Publisher authorities' key files are read as a policy's are: relative to the file.
	f, err := mirror.ParseFileWith(fh, mirror.ParseOptions{ReadFile: gate.FileOptions(path).ReadFile})
	if err != nil {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	return f, nil
}

func readInventory(path string) (*mirror.Inventory, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return mirror.ReadInventory(fh)
}
