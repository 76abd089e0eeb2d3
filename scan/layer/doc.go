// Package layer analyses image layers as streams and stacks the results into the filesystem a container sees.
package layer
