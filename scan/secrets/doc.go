// Package secrets finds credentials (private keys, cloud and SaaS tokens, passwords in URLs) in file contents and image metadata, and reports them only in redacted form.
package secrets
