package imageconfig

import (
	"context"
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
// it is reported once, at its first place (same type and credential).
func SecretsInConfig(cfg *Config) []secrets.Secret {
	found, _ := SecretsInConfigContext(context.Background(), cfg)
	return found
}

// SecretsInConfigContext is SecretsInConfig under ctx: when ctx ends (the
// caller's budget for inspecting the config), it stops and returns what it
// found so far with context.Cause(ctx). Its time is linear in the config's
// size (O(n log n) in the candidate matches), however the config is built.
func SecretsInConfigContext(ctx context.Context, cfg *Config) ([]secrets.Secret, error) {
	if cfg == nil {
		return nil, nil
	}
	s := &configSearch{ctx: ctx}
	for i, env := range cfg.Config.Env {
		name, _, _ := strings.Cut(env, "=")
		s.env(fmt.Sprintf("config.Env[%d] %s", i, truncate(name)), env)
	}
	keys := make([]string, 0, len(cfg.Config.Labels))
	for k := range cfg.Config.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.text(fmt.Sprintf("config.Labels[%q]", truncate(k)), k+"="+cfg.Config.Labels[k])
	}
	if len(cfg.Config.Entrypoint) > 0 {
		s.text("config.Entrypoint", strings.Join(cfg.Config.Entrypoint, " "))
	}
	if len(cfg.Config.Cmd) > 0 {
		s.text("config.Cmd", strings.Join(cfg.Config.Cmd, " "))
	}
	for i, h := range cfg.History {
		s.history(fmt.Sprintf("history[%d].created_by", i), h.CreatedBy)
	}
	type key struct {
		typ, excerpt string
		fingerprint  uint64
	}
	seen := map[key]bool{}
	return slices.DeleteFunc(s.found, func(s secrets.Secret) bool {
		k := key{typ: s.Type, fingerprint: s.Fingerprint()}
		if k.fingerprint == 0 {
			k.excerpt = s.Redacted
		}
		dup := seen[k]
		seen[k] = true
		return dup
	}), s.err
}

// configSearch gathers the secrets of one config until its context ends.
type configSearch struct {
	ctx   context.Context
	found []secrets.Secret
	err   error
}

func (s *configSearch) text(source, text string) {
	if s.err == nil {
		var found []secrets.Secret
		found, s.err = secrets.ScanTextContext(s.ctx, source, text)
		s.found = append(s.found, found...)
	}
}

func (s *configSearch) env(source, entry string) {
	if s.err == nil {
		var found []secrets.Secret
		found, s.err = secrets.ScanEnvContext(s.ctx, source, entry)
		s.found = append(s.found, found...)
	}
}

// history scans one history command. Build arguments ("|N K=V … cmd")
// and the variables of ENV and ARG steps are scanned one by one as
// environment entries, so a credential-named variable is caught even when
// its value has no known format; the rest of the command is scanned as text.
func (s *configSearch) history(source, createdBy string) {
	cmd := strings.TrimSpace(createdBy)
	cmd = strings.TrimPrefix(cmd, "RUN ")
	if n, rest, ok := buildArgs(cmd); ok {
		fields := strings.SplitN(rest, " ", n+1)
		for j := 0; j < n && j < len(fields); j++ {
			s.env(source+" build-arg", fields[j])
		}
		cmd = ""
		if len(fields) > n {
			cmd = fields[n]
		}
	}
	step := strings.TrimSpace(strings.TrimPrefix(cmd, "/bin/sh -c #(nop)"))
	if v, ok := strings.CutPrefix(step, "ENV "); ok {
		s.vars(source+" ENV", v)
		return
	}
	if v, ok := strings.CutPrefix(step, "ARG "); ok {
		s.vars(source+" ARG", v)
		return
	}
	s.text(source, cmd)
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

// vars scans the K=V pairs of an ENV or ARG step; a legacy "ENV K V" form
// is one pair.
func (s *configSearch) vars(source, vars string) {
	fields := strings.Fields(vars)
	if len(fields) >= 2 && !strings.Contains(fields[0], "=") {
		s.env(source, fields[0]+"="+strings.Join(fields[1:], " "))
		return
	}
	for _, f := range fields {
		s.env(source, strings.Trim(f, `"`))
	}
}

// truncate keeps sources short when names are absurdly long.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
