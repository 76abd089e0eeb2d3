// Package vulndb imports OSV vulnerability records into an offline on-disk index and looks them up by package.
package vulndb
