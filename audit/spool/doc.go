// Package spool is a bounded, append-only on-disk queue of opaque records, one per event an
// exporter still has to deliver: segment files read back after a restart.
package spool
