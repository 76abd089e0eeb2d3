// Package pullthrough fetches public images on first pull: a pull of a name mapped from a
// source registry (mirror/docker.io/library/nginx) that the upstream lacks is copied from
// the source into the upstream byte for byte, once across replicas, before the gate judges
// it like any image.
package pullthrough
