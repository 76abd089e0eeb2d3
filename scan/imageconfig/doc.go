// Package imageconfig reads OCI and Docker image configs and checks them for unsafe settings: running as root, missing labels, unknown base image and embedded secrets.
package imageconfig
