// Package clientconfig writes the files that point container clients at the gateway, so
// that they cannot reach the upstream around it: containerd's hosts.toml for the gateway
// in front of a registry (Containerd), and for the mirror of an air-gapped site (Mirror:
// hosts.toml and registries.conf sending source names to their mapped names).
package clientconfig
