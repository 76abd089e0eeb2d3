// Package clientconfig writes the files that point container clients at the gateway, so
// that they cannot reach the upstream around it: containerd's hosts.toml today.
package clientconfig
