// Package policy is portcullis's pure decision engine: it parses and validates a policy file, assigns an image to an environment and decides, for a given moment, whether pushing or pulling it is allowed, warned about or denied.
package policy
