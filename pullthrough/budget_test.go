package pullthrough

import (
	"context"
	"net/http"
	"testing"
)

func TestBudgetTake(t *testing.T) {
	t.Parallel()
	b := newBudget(3, 0)
	for i := range 3 {
		if !b.take(context.Background(), false) {
			t.Fatalf("take %d refused within the budget", i)
		}
	}
	if b.take(context.Background(), false) {
		t.Fatal("a fourth request within the same instant was allowed by a budget of 3 per minute")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.take(ctx, true) {
		t.Fatal("a waiting take succeeded on a cancelled context with no budget left")
	}
	if !newBudget(0, 0).take(context.Background(), false) {
		t.Fatal("an unbounded budget refused")
	}
}

func TestBudgetFloor(t *testing.T) {
	t.Parallel()
	b := newBudget(0, 10)
	if _, below := b.belowFloor(); below {
		t.Fatal("below the floor before the source said anything")
	}
	for _, c := range []struct {
		header string
		want   int64
		below  bool
	}{
		{"76;w=21600", 76, false},
		{"9;w=21600", 9, true},
		{"garbage", 9, true}, // unreadable: the last value stands
		{"-4", 9, true},
		{" 10 ", 10, false},
	} {
		b.observe(http.Header{"Ratelimit-Remaining": {c.header}})
		got, below := b.belowFloor()
		if got != c.want || below != c.below {
			t.Errorf("after %q: remaining %d below %v, want %d %v", c.header, got, below, c.want, c.below)
		}
	}
}

func FuzzObserve(f *testing.F) {
	for _, s := range []string{"76;w=21600", "0", "", ";", "99999999999999999999", "-1;w=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		b := newBudget(0, 5)
		b.observe(http.Header{"Ratelimit-Remaining": {v}})
		if r := b.remaining.Load(); r < -1 {
			t.Fatalf("%q stored remaining %d", v, r)
		}
	})
}

// FuzzMap: whatever name and ns a client sends, a mapped name lies under the namespace of
// the source ns names, and nothing is mapped for an ns that names no source.
func FuzzMap(f *testing.F) {
	for _, s := range [][2]string{{"library/nginx", "docker.io"}, {"nginx", "DOCKER.IO"}, {"a/../b", "ghcr.io"}, {"x", "evil.example"}, {"", "docker.io"}} {
		f.Add(s[0], s[1])
	}
	fe, err := New("http://upstream.invalid", http.DefaultTransport, nil, []Source{
		{Registry: "docker.io", Endpoint: "https://registry-1.docker.io", Repositories: []string{"**"}},
		{Registry: "ghcr.io", Endpoint: "https://ghcr.io", Prefix: "public", Repositories: []string{"**"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, ns string) {
		mapped, ok := fe.Map(name, ns)
		src := fe.srcs.forNS(ns)
		switch {
		case src == nil && (ok || mapped != name):
			t.Fatalf("Map(%q, %q) = %q %v for an ns naming no source", name, ns, mapped, ok)
		case src != nil && (!ok || len(mapped) <= len(src.namespace)+1 || mapped[:len(src.namespace)+1] != src.namespace+"/"):
			t.Fatalf("Map(%q, %q) = %q %v, want a name under %s/", name, ns, mapped, ok, src.namespace)
		}
		if ok {
			back, path, found := fe.srcs.resolve(mapped)
			if !found || back != src || path == "" {
				t.Fatalf("resolve(%q) = %v %q %v, want source %s", mapped, back, path, found, src.Registry)
			}
		}
	})
}
