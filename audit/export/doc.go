// Package export delivers decision events to a SIEM at least once: CloudEvents over HTTP,
// Splunk HEC and RFC 5424 syslog, each behind its own bounded on-disk spool.
package export
