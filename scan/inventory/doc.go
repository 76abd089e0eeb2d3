// Package inventory reads the packages installed in a container image from the files that record them.
package inventory
