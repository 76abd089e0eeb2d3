// Package upstream is the gateway's own client for reads from the upstream registry that a
// decision needs, such as the digest a tag points at.
package upstream
