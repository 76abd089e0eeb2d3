package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/portcullis-dev/portcullis/clientconfig"
	"github.com/portcullis-dev/portcullis/config"
)

const deployHelp = `Usage: portcullis deploy CLIENT [flags]

Clients:
  containerd   write hosts.toml files that make the gateway containerd's only way to a registry

Run "portcullis deploy CLIENT -h" for a client's flags and an example.
`

const deployContainerdHelp = `Usage: portcullis deploy containerd --registry NAME [--registry NAME...] --gateway URL [--ca FILE] [--out DIR]
       portcullis deploy containerd --pull-through [--config FILE | --registry NAME...] --gateway URL [--ca FILE] [--out DIR]

Writes DIR/<registry>/hosts.toml for each --registry, in containerd's certs.d
layout: every pull of NAME/... resolves and pulls through the gateway, a pull
the gateway refuses is asked once and never falls through to the registry
itself. Copy DIR to /etc/containerd/certs.d on every node (or point the CRI
plugin's registry config_path at it); containerd reads the files at each pull.

--gateway is the gateway's base URL as the nodes reach it; --ca is the path
ON THE NODE of the PEM bundle that signs the gateway's certificate.
Prints the files written. Exit status: 0 when written, 1 when writing failed,
2 on usage errors.

With --pull-through the registries are public ones the gateway mirrors on demand (the
mirrors section of its config, read with --config, or --registry): every file names the
same gateway host, and containerd's ns query parameter tells the gateway which registry
a pull is for (docs/PULLTHROUGH.md).

Example:
  portcullis deploy containerd --registry registry.example.com \
    --gateway https://portcullis.example.com:5000 \
    --ca /etc/containerd/certs.d/portcullis-ca.pem --out ./certs.d
  portcullis deploy containerd --pull-through --config /etc/portcullis/config.yaml \
    --gateway https://portcullis.example.com:5000 --out ./certs.d

Flags:
`

// runDeploy runs "portcullis deploy ARGS" and returns the exit status.
func runDeploy(args []string, stdout, stderr io.Writer) int {
	return dispatch("deploy", deployHelp, map[string]subcommand{
		"containerd": runDeployContainerd,
	}, args, stdout, stderr)
}

// stringList is a flag that may be given several times.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// runDeployContainerd writes containerd hosts.toml files.
func runDeployContainerd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("deploy containerd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), deployContainerdHelp)
		fs.PrintDefaults()
	}
	var c clientconfig.Containerd
	var registries stringList
	fs.Var(&registries, "registry", "registry `NAME` images are pulled by (host[:port]); repeatable")
	fs.StringVar(&c.Gateway, "gateway", "", "the gateway's base `URL` as the nodes reach it, e.g. https://gw:5000")
	fs.StringVar(&c.CAFile, "ca", "", "absolute `path` on the node of the CA bundle for the gateway's certificate")
	out := fs.String("out", "certs.d", "`directory` to write <registry>/hosts.toml under")
	pullThrough := fs.Bool("pull-through", false, "the registries are public ones the gateway mirrors on demand (its mirrors section)")
	cfgFile := fs.String("config", "", "with --pull-through: the gateway's config `file`, whose mirrors name the registries")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "portcullis deploy containerd: unexpected arguments %q\n", fs.Args())
		return 2
	}
	c.Registries = registries
	var files []clientconfig.File
	var err error
	switch {
	case *cfgFile != "" && !*pullThrough:
		fmt.Fprintln(stderr, "portcullis deploy containerd: --config is for --pull-through")
		return 2
	case *pullThrough:
		if *cfgFile != "" {
			cfg, lerr := config.Load(*cfgFile)
			if lerr != nil {
				fmt.Fprintf(stderr, "portcullis deploy containerd: %v\n", lerr)
				return 2
			}
			if len(cfg.Mirrors) == 0 {
				fmt.Fprintf(stderr, "portcullis deploy containerd: %s has no mirrors section\n", *cfgFile)
				return 2
			}
			for _, m := range cfg.Mirrors {
				registries = append(registries, m.Registry)
			}
		}
		files, err = clientconfig.PullThrough{Registries: registries, Gateway: c.Gateway, CAFile: c.CAFile}.Files()
	default:
		files, err = c.Files()
	}
	if err != nil {
		fmt.Fprintf(stderr, "portcullis deploy containerd: %v\n", err)
		return 2
	}
	if err := clientconfig.Write(*out, files); err != nil {
		fmt.Fprintf(stderr, "portcullis deploy containerd: %v\n", err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintln(stdout, filepath.Join(*out, filepath.FromSlash(f.Path)))
	}
	return 0
}
