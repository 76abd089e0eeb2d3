// Package e2e runs the portcullis binary as a real process and drives it with real registry clients (crane, skopeo) and real upstream failures.
package e2e
