package imageconfig

import (
	"fmt"
	"strconv"
	"strings"
)

// RunsAsRoot reports whether a container of the image runs as root by
// default, and why. The user part of config.User decides: empty (no USER,
// or ":gid"), "root", or a uid that is 0 ("0", "00", "0:0", "0:1000",
// "root:root") is root; any other uid is not, and neither is any other name,
// although the image's /etc/passwd, which this does not read, could give a
// name uid 0. A nil config is reported as root: nothing says otherwise.
// Kubernetes' runAsUser can override all of this at deploy time.
func RunsAsRoot(cfg *Config) (bool, string) {
	if cfg == nil {
		return true, "no image config, so no USER"
	}
	spec := strings.TrimSpace(cfg.Config.User)
	if spec == "" {
		return true, "no USER is set"
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	groupNote := ""
	if hasGroup && group != "" {
		if g, err := strconv.ParseUint(group, 10, 32); group == "root" || err == nil && g == 0 {
			groupNote = " in the root group (gid 0)"
		}
	}
	switch {
	case user == "":
		return true, fmt.Sprintf("USER %q names a group but no user: the process runs as root (uid 0)", spec)
	case user == "root":
		return true, fmt.Sprintf("USER %q is root", spec)
	case isDigits(user):
		uid, err := strconv.ParseUint(user, 10, 32)
		if err != nil {
			return false, fmt.Sprintf("USER %q: uid out of range, the container will not start", spec)
		}
		if uid == 0 {
			return true, fmt.Sprintf("USER %q is uid 0 (root)", spec)
		}
		return false, fmt.Sprintf("runs as uid %d%s", uid, groupNote)
	default:
		return false, fmt.Sprintf("runs as user %q%s (not root unless the image's /etc/passwd gives it uid 0)", user, groupNote)
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
