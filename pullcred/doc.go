// Package pullcred mints and checks the short-lived, pull-only credentials that scanner
// adapters pull one image through the gateway with.
package pullcred
