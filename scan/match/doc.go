// Package match finds the vulnerabilities in a vulnerability database that affect an image's installed packages.
package match
