package imageconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// MaxConfigBytes is the largest image config or manifest Parse functions
// accept; real configs are a few KiB, and registries cap manifests at 4 MiB.
const MaxConfigBytes = 4 << 20

// ErrTooLarge is returned for input over MaxConfigBytes.
var ErrTooLarge = errors.New("over the size limit")

// Config is the part of an OCI image config (application/vnd.oci.image.config.v1+json)
// or Docker image config (application/vnd.docker.container.image.v1+json) the
// checks read.
type Config struct {
	// Architecture is the CPU architecture the image is built for, e.g. "amd64".
	Architecture string `json:"architecture,omitempty"`
	// OS is the operating system the image is built for, e.g. "linux".
	OS string `json:"os,omitempty"`
	// Config holds the defaults a container is run with.
	Config ContainerConfig `json:"config"`
	// RootFS lists the layers' uncompressed digests.
	RootFS RootFS `json:"rootfs"`
	// History records how each layer was built.
	History []History `json:"history,omitempty"`
}

// ContainerConfig is the "config" object of an image config: the defaults a
// container is run with.
type ContainerConfig struct {
	// User is the user, "user", "uid", "user:group" or "uid:gid", that the
	// process runs as; empty means root.
	User string `json:"User,omitempty"`
	// Env is the environment, "NAME=value" each.
	Env []string `json:"Env,omitempty"`
	// Entrypoint is the executable run, with its first arguments.
	Entrypoint []string `json:"Entrypoint,omitempty"`
	// Cmd is the default command, or the default arguments to Entrypoint.
	Cmd []string `json:"Cmd,omitempty"`
	// WorkingDir is the process's working directory.
	WorkingDir string `json:"WorkingDir,omitempty"`
	// Labels are the image's labels.
	Labels map[string]string `json:"Labels,omitempty"`
	// ExposedPorts are the ports the image declares, "8080/tcp" each.
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
}

// RootFS is the "rootfs" object of an image config.
type RootFS struct {
	// Type is always "layers".
	Type string `json:"type"`
	// DiffIDs are the digests of the uncompressed layers, bottom first.
	DiffIDs []string `json:"diff_ids"`
}

// History is one entry of an image config's "history": one build step.
type History struct {
	// Created is when the step ran, RFC 3339.
	Created string `json:"created,omitempty"`
	// CreatedBy is the command of the step, e.g. "/bin/sh -c apt-get install …"
	// or "RUN |1 TOKEN=… /bin/sh -c …" (build arguments included).
	CreatedBy string `json:"created_by,omitempty"`
	// Comment is a free-text note.
	Comment string `json:"comment,omitempty"`
	// EmptyLayer is true for steps that made no layer (ENV, USER, LABEL …).
	EmptyLayer bool `json:"empty_layer,omitempty"`
}

// ParseConfig parses an image config. It fails on input over
// MaxConfigBytes, on anything but a single JSON object, and on fields of the
// wrong type.
func ParseConfig(data []byte) (*Config, error) {
	if err := checkObject(data); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("parsing image config: %w", err)
	}
	return &c, nil
}

// manifest is the part of an OCI image manifest or index that holds annotations.
type manifest struct {
	Annotations map[string]string `json:"annotations"`
}

// ParseManifestAnnotations returns the annotations of an OCI image manifest or
// index (nil if it has none). It fails as ParseConfig does.
func ParseManifestAnnotations(data []byte) (map[string]string, error) {
	if err := checkObject(data); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	return m.Annotations, nil
}

// checkObject rejects input that is too large or is not a JSON object.
func checkObject(data []byte) error {
	if len(data) > MaxConfigBytes {
		return fmt.Errorf("%d bytes: %w of %d", len(data), ErrTooLarge, MaxConfigBytes)
	}
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return errors.New("not a JSON object")
	}
	return nil
}
