// Package loadgen simulates a cluster rollout against an OCI registry endpoint over plain
// HTTP: N nodes pulling one multi-layer image at once the way containerd does, with the
// CPU and memory of the serving processes read from /proc.
package loadgen
