// Package hostile builds hostile image layers as real tar, gzip and zstd bytes, at test time, for the scanner's tests.
package hostile
