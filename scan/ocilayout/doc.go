// Package ocilayout reads images from an OCI image layout directory, for offline scans.
package ocilayout
