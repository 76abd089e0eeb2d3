package imageconfig

import (
	"strings"
	"testing"
)

// FuzzParseConfig feeds arbitrary bytes to ParseConfig and runs every check
// on what it accepts: nothing may panic, and a finding's source must not
// carry the full text of an environment entry it came from.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(nginxConfig))
	f.Add([]byte(`{"config":{"User":"0:0","Env":["AWS_SECRET_ACCESS_KEY=abcdefghijklmnopqrstuvwxyz0123456789ABCD"],"Labels":{"a":"b"}},"history":[{"created_by":"RUN |1 T=x /bin/sh -c true"}]}`))
	f.Add([]byte(`{"history":[{"created_by":"|99 A"},{"created_by":"/bin/sh -c #(nop)  ENV A B C"},{"created_by":"ARG"}]}`))
	f.Add([]byte(`{"config":null,"rootfs":null,"history":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil {
			if cfg != nil {
				t.Fatal("config returned with an error")
			}
			return
		}
		RunsAsRoot(cfg)
		BaseImage(cfg, cfg.Config.Labels)
		MissingLabels(cfg, []string{"a", "org.opencontainers.image.source"})
		for _, s := range SecretsInConfig(cfg) {
			if s.Type == "" || s.Source == "" || s.Path != "" {
				t.Fatalf("bad finding %+v", s)
			}
			for _, env := range cfg.Config.Env {
				name, v, ok := strings.Cut(env, "=")
				if ok && len(v) >= 7 && !strings.Contains(name, v) && strings.Contains(s.Source+s.Redacted, v) {
					t.Fatalf("finding %+v reveals the value of %q", s, env)
				}
			}
		}
		_, _ = ParseManifestAnnotations(data)
	})
}
