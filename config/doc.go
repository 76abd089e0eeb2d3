// Package config holds the gateway's configuration file as plain data, with defaults,
// loading from YAML and the environment, and validation that reports every problem with
// its field path.
package config
