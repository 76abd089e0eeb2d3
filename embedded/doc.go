// Package embedded runs a CNCF distribution v3 registry in-process, the gateway's default
// upstream (reached through Transport, with no socket) and the real registry its tests talk to.
package embedded
