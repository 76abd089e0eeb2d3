// Package audit defines the gateway's decision events and the sinks that record them.
package audit
