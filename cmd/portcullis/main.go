// Command portcullis is the OCI registry gateway: it serves the /v2/ API in front of an
// upstream registry and applies the security policy to every push and pull.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `portcullis: an OCI registry gateway that enforces your image policy.

Usage:
  portcullis serve [flags]        run the gateway (embedded registry unless --upstream)
  portcullis policy lint FILE...  check policy files
  portcullis policy explain ...   show which environment and rules apply to an image
  portcullis exceptions lint|list|due ...   check and review exceptions
  portcullis check IMAGE          ask the gateway what it decides for a pushed image (CI)
  portcullis scan IMAGE           scan an image offline (table, JSON or SARIF)
  portcullis db import|status ...           import OSV records, check the vulnerability database
  portcullis deploy containerd ...         write containerd hosts.toml files for the gateway
  portcullis mirror collect|verify|inventory|import ...  carry images to an air-gapped site
  portcullis records export|import|import-from-redis ...   back up, restore, migrate the records
  portcullis decisions list ...   list recorded decisions (--repository, --digest, --since)
  portcullis version              print the version

Run "portcullis COMMAND -h" for a command's flags and an example.
`

func main() {
	stop := startProfile(os.Stderr)
	code := run(os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "policy":
		return runPolicy(args[1:], stdout, stderr)
	case "check":
		return runCheck(args[1:], stdout, stderr)
	case "scan":
		return runScan(args[1:], stdout, stderr)
	case "exceptions":
		return runExceptions(args[1:], stdout, stderr)
	case "db":
		return runDB(args[1:], stdout, stderr)
	case "deploy":
		return runDeploy(args[1:], stdout, stderr)
	case "mirror":
		return runMirror(args[1:], stdout, stderr)
	case "records":
		return runRecords(args[1:], stdout, stderr)
	case "decisions":
		return runDecisions(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "portcullis", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "portcullis: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}
