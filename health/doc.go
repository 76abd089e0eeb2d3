// Package health serves the gateway's liveness and readiness endpoints.
package health
