package proxy

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDoorHost: whatever Host and X-Forwarded-Host a client sends, a door that does not
// trust a front proxy applies its own host, and a trusting one applies one host name (no
// list) taken from the headers.
func FuzzDoorHost(f *testing.F) {
	f.Add("ci.registry.example", "ci.registry.example")
	f.Add("registry.example:5000", "evil.example, ci.registry.example")
	f.Add("", " , ")
	f.Add("[::1]:5000", "ci.registry.example,")
	f.Fuzz(func(t *testing.T, host, forwarded string) {
		r := httptest.NewRequest("GET", "/v2/", nil)
		r.Host = host
		r.Header.Set("X-Forwarded-Host", forwarded)
		for _, d := range []Door{{Name: "cluster"}, {Name: "ci", Host: "ci.registry.example"}} {
			if got := d.host(r); got != d.Host {
				t.Fatalf("door %s applies %q for Host %q, X-Forwarded-Host %q; want its own %q", d.Name, got, host, forwarded, d.Host)
			}
		}
		got := Door{Name: "front", TrustForwardedHost: true}.host(r)
		if strings.Contains(got, ",") && got != host {
			t.Fatalf("trusting door applies the list %q (X-Forwarded-Host %q)", got, forwarded)
		}
		if last := strings.TrimSpace(forwarded[strings.LastIndexByte(forwarded, ',')+1:]); last != "" && got != last {
			t.Fatalf("trusting door applies %q, want the last forwarded value %q", got, last)
		}
	})
}
