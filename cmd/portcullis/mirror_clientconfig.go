package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/portcullis-dev/portcullis/clientconfig"
)

const mirrorClientConfigHelp = `Usage: portcullis mirror client-config --file mirror.yaml --gateway URL [--ca FILE] [--out DIR] [--format containerd|registries.conf|both]

Writes what sends clients pulling by the SOURCE names of the mirror file (docker.io/library/nginx)
to the gateway under the MAPPED names (mirror/docker.io/library/nginx), with no fallback to
the source registry:
  DIR/containerd/<registry>/hosts.toml   for containerd (copy into /etc/containerd/certs.d)
  DIR/registries.conf                    for CRI-O and podman (containers-registries.conf v2)
A repository mapped with "as" is honoured in registries.conf; containerd cannot rewrite one
repository, which is reported as a warning.

With --pull-through (a gateway that also fetches the sources on demand, see its mirrors
section), the containerd files name the gateway's root for every registry and rely on
containerd's ns query parameter instead of path rewriting.

Example:
  portcullis mirror client-config --file mirror.yaml --gateway https://gw.internal:5000 \
    --ca /etc/containerd/certs.d/portcullis-ca.pem --out ./clients

Flags:
`

func runMirrorClientConfig(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("portcullis mirror client-config")
	file := fs.String("file", "", "mirror file (YAML)")
	gateway := fs.String("gateway", "", "gateway base URL as the nodes reach it: https://HOST[:PORT] (http:// without TLS)")
	ca := fs.String("ca", "", "absolute path on the node of the CA bundle of the gateway's certificate (containerd)")
	out := fs.String("out", "client-config", "directory to write into")
	format := fs.String("format", "both", "containerd, registries.conf or both")
	pullThrough := fs.Bool("pull-through", false, "containerd files for a gateway that fetches the sources on demand (ns, one host for all registries)")
	if status, ok := parseFlags(fs, mirrorClientConfigHelp, args, stdout, stderr); !ok {
		return status
	}
	usage := usageFor("mirror client-config", stderr)
	switch {
	case *file == "" || *gateway == "":
		return usage("--file and --gateway are required")
	case *format != "containerd" && *format != "registries.conf" && *format != "both":
		return usage("--format %q: want containerd, registries.conf or both", *format)
	}
	f, err := readMirrorFile(*file)
	if err != nil {
		fmt.Fprintf(stderr, "portcullis mirror client-config: %v\n", err)
		return 1
	}
	m := clientconfig.Mirror{File: f, Gateway: *gateway, CAFile: *ca}
	var files []clientconfig.File
	if *format != "registries.conf" {
		hosts, warnings, err := m.ContainerdFiles()
		if *pullThrough {
			hosts, warnings = nil, nil
			hosts, err = m.PullThroughFiles()
		}
		if err != nil {
			return usage("%v", err)
		}
		for _, w := range warnings {
			fmt.Fprintf(stderr, "portcullis mirror client-config: warning: %s\n", w)
		}
		files = append(files, hosts...)
	}
	if *format != "containerd" {
		conf, err := m.RegistriesConf()
		if err != nil {
			return usage("%v", err)
		}
		files = append(files, conf)
	}
	if err := clientconfig.Write(*out, files); err != nil {
		fmt.Fprintf(stderr, "portcullis mirror client-config: %v\n", err)
		return 1
	}
	for _, f := range files {
		fmt.Fprintln(stdout, filepath.Join(*out, filepath.FromSlash(f.Path)))
	}
	return 0
}
