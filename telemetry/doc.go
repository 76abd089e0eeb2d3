// Package telemetry sets up the gateway's OpenTelemetry trace and metric providers and the
// Prometheus /metrics endpoint.
package telemetry
