package imageconfig

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/portcullis-dev/portcullis/scan/secrets"
)

// SecretsInConfig returns the secrets written into an image config, which
// anyone who can pull the image can read: in environment variables
// (config.Env), labels, the entrypoint and command, and the build history —
// commands, build arguments Docker records there ("|2 TOKEN=… /bin/sh -c …"),
// and ENV and ARG steps, which keep values later steps overwrote.
// Findings name where they were found in Source and hold only redacted
// excerpts. A secret set by ENV shows in both config.Env and the history:
// it is reported once, at its first place (same type and excerpt).
func SecretsInConfig(cfg *Config) []secrets.Secret {
	if cfg == nil {
		return nil
	}
	var found []secrets.Secret
	for i, env := range cfg.Config.Env {
		name, _, _ := strings.Cut(env, "=")
		found = append(found, secrets.ScanEnv(fmt.Sprintf("config.Env[%d] %s", i, truncate(name)), env)...)
	}
	keys := make([]string, 0, len(cfg.Config.Labels))
	for k := range cfg.Config.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		found = append(found, secrets.ScanText(fmt.Sprintf("config.Labels[%q]", truncate(k)), k+"="+cfg.Config.Labels[k])...)
	}
	if len(cfg.Config.Entrypoint) > 0 {
		found = append(found, secrets.ScanText("config.Entrypoint", strings.Join(cfg.Config.Entrypoint, " "))...)
	}
	if len(cfg.Config.Cmd) > 0 {
		found = append(found, secrets.ScanText("config.Cmd", strings.Join(cfg.Config.Cmd, " "))...)
	}
	for i, h := range cfg.History {
		found = append(found, historySecrets(fmt.Sprintf("history[%d].created_by", i), h.CreatedBy)...)
	}
	type key struct{ typ, excerpt string }
	seen := map[key]bool{}
	return slices.DeleteFunc(found, func(s secrets.Secret) bool {
		k := key{s.Type, s.Redacted}
		dup := seen[k]
		seen[k] = true
		return dup
	})
}

// historySecrets scans one history command. Build arguments ("|N K=V … cmd")
// and the variables of ENV and ARG steps are scanned one by one as
// environment entries, so a credential-named variable is caught even when
// its value has no known format; the rest of the command is scanned as text.
func historySecrets(source, createdBy string) []secrets.Secret {
	cmd := strings.TrimSpace(createdBy)
	cmd = strings.TrimPrefix(cmd, "RUN ")
	var found []secrets.Secret
	if n, rest, ok := buildArgs(cmd); ok {
		fields := strings.SplitN(rest, " ", n+1)
		for j := 0; j < n && j < len(fields); j++ {
			found = append(found, secrets.ScanEnv(source+" build-arg", fields[j])...)
		}
		cmd = ""
		if len(fields) > n {
			cmd = fields[n]
		}
	}
	step := strings.TrimSpace(strings.TrimPrefix(cmd, "/bin/sh -c #(nop)"))
	if v, ok := strings.CutPrefix(step, "ENV "); ok {
		return append(found, varSecrets(source+" ENV", v)...)
	}
	if v, ok := strings.CutPrefix(step, "ARG "); ok {
		return append(found, varSecrets(source+" ARG", v)...)
	}
	return append(found, secrets.ScanText(source, cmd)...)
}

// buildArgs recognises the "|N " prefix of a RUN step with N build arguments.
func buildArgs(cmd string) (int, string, bool) {
	rest, ok := strings.CutPrefix(cmd, "|")
	if !ok {
		return 0, "", false
	}
	num, rest, ok := strings.Cut(rest, " ")
	if !ok || !isDigits(num) || len(num) > 4 {
		return 0, "", false
	}
	n, err := strconv.Atoi(num)
	return n, rest, err == nil
}

// varSecrets scans the K=V pairs of an ENV or ARG step; a legacy
// "ENV K V" form is one pair.
func varSecrets(source, vars string) []secrets.Secret {
	fields := strings.Fields(vars)
	if len(fields) >= 2 && !strings.Contains(fields[0], "=") {
		return secrets.ScanEnv(source, fields[0]+"="+strings.Join(fields[1:], " "))
	}
	var found []secrets.Secret
	for _, f := range fields {
		found = append(found, secrets.ScanEnv(source, strings.Trim(f, `"`))...)
	}
	return found
}

// truncate keeps sources short when names are absurdly long.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
