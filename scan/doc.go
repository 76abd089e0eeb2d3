// Package scan finds vulnerable packages, secrets and unsafe configuration in container images.
package scan
