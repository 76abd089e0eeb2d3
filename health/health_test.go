package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/portcullis-dev/portcullis/health"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestDetailedAndBare(t *testing.T) {
	t.Parallel()
	secret := "/etc/portcullis/policy.yaml"
	for _, tt := range []struct {
		name      string
		upstream  error
		wantCode  int
		wantReady bool
	}{
		{"ready", nil, http.StatusOK, true},
		{"not ready", errors.New("upstream registry registry.internal:5000 answered 502"), http.StatusServiceUnavailable, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := health.New(time.Second)
			h.Add("upstream", func(context.Context) error { return tt.upstream })
			h.AddInfo("policy", func() string { return "file " + secret + ", revision abc" })
			h.AddInfo("exceptions", func() string { return "owner alice@example.com: prod/payments/api" })

			code, body := get(t, h, "/readyz")
			var st health.Status
			if err := json.Unmarshal([]byte(body), &st); err != nil {
				t.Fatalf("detailed /readyz %q: %v", body, err)
			}
			if code != tt.wantCode || st.Ready != tt.wantReady || st.Info["policy"] == "" || st.Checks["upstream"] == "" {
				t.Errorf("detailed /readyz: %d %s", code, body)
			}

			code, body = get(t, h.Bare(), "/readyz")
			if code != tt.wantCode {
				t.Errorf("bare /readyz: %d, want %d", code, tt.wantCode)
			}
			var bare map[string]any
			if err := json.Unmarshal([]byte(body), &bare); err != nil {
				t.Fatalf("bare /readyz %q: %v", body, err)
			}
			if len(bare) != 1 || bare["ready"] != tt.wantReady {
				t.Errorf("bare /readyz = %s, want only {\"ready\":%v}", body, tt.wantReady)
			}
			for _, leak := range []string{secret, "alice", "payments", "registry.internal", "upstream", "policy"} {
				if strings.Contains(body, leak) {
					t.Errorf("bare /readyz %q reveals %q", body, leak)
				}
			}
			if code, body := get(t, h.Bare(), "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != `{"alive":true}` {
				t.Errorf("bare /healthz: %d %s", code, body)
			}
		})
	}
}
