package vulndb

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

type parseCase struct {
	name    string
	in      string
	wantErr bool
	wantWd  bool
	check   func(t *testing.T, r Record)
}

// goEntry is a record with one affected entry in ecosystem eco whose
// ecosystem_specific is es.
func goEntry(eco, es string) string {
	return `{"id":"GO-1","modified":"2024-01-02T03:04:05Z","affected":[{"package":{"ecosystem":"` + eco +
		`","name":"m"},"ecosystem_specific":` + es + `}]}`
}

// wantPlatforms checks the platform limits kept for the record's one entry.
func wantPlatforms(want ...Platform) func(t *testing.T, r Record) {
	return func(t *testing.T, r Record) {
		if len(r.Affected) != 1 || !reflect.DeepEqual(r.Affected[0].Platforms, want) {
			t.Errorf("platforms %+v, want %+v", r.Affected, want)
		}
	}
}

// platformCases cover the platform limits read from Go entries'
// ecosystem_specific.imports.
var platformCases = []parseCase{
	{name: "go no imports", in: goEntry("Go", `{}`), check: wantPlatforms()},
	{name: "go imports unlimited", in: goEntry("Go", `{"imports":[{"path":"m/a"}]}`), check: wantPlatforms()},
	{name: "go windows only", in: goEntry("Go", `{"imports":[{"path":"m/a","goos":["windows"]},{"path":"m/b","goos":["windows"]}]}`),
		check: wantPlatforms(Platform{GOOS: []string{"windows"}})},
	{name: "go one import unlimited", in: goEntry("Go", `{"imports":[{"path":"m/a","goos":["windows"]},{"path":"m/b"}]}`),
		check: wantPlatforms()},
	{name: "go lists sorted, limits kept apart", in: goEntry("Go", `{"imports":[{"path":"m/a","goos":["windows","darwin","windows"]},{"path":"m/b","goos":["linux"],"goarch":["arm64"]},{"path":"m/c","goos":["darwin","windows"]}]}`),
		check: wantPlatforms(Platform{GOOS: []string{"darwin", "windows"}}, Platform{GOOS: []string{"linux"}, GOARCH: []string{"arm64"}})},
	{name: "go malformed imports", in: goEntry("Go", `{"imports":[{"goos":"windows"}]}`), check: wantPlatforms()},
	{name: "not go", in: goEntry("npm", `{"imports":[{"path":"m/a","goos":["windows"]}]}`), check: wantPlatforms()},
}

func TestParseRecord(t *testing.T) {
	tests := []parseCase{
		{name: "minimal", in: `{"id":"X-1","modified":"2024-01-02T03:04:05Z"}`},
		{name: "no id", in: `{"modified":"2024-01-02T03:04:05Z"}`, wantErr: true},
		{name: "no modified", in: `{"id":"X-1"}`, wantErr: true},
		{name: "bad modified", in: `{"id":"X-1","modified":"yesterday"}`, wantErr: true},
		{name: "not json", in: `{"id":`, wantErr: true},
		{name: "withdrawn", in: `{"id":"X-1","modified":"2024-01-02T03:04:05Z","withdrawn":"2024-02-01T00:00:00Z"}`, wantWd: true},
		{name: "summary from details", in: `{"id":"X-1","modified":"2024-01-02T03:04:05Z","details":"first line\nsecond"}`,
			check: func(t *testing.T, r Record) {
				if r.Summary != "first line" {
					t.Errorf("summary %q", r.Summary)
				}
			}},
		{name: "severity words", in: `{"id":"X-1","modified":"2024-01-02T03:04:05.123456Z","database_specific":{"severity":"MODERATE"},
			"affected":[{"package":{"ecosystem":"Debian:12","name":"p"},"ecosystem_specific":{"urgency":"low"},"database_specific":{"severity":7}},
			{"package":{"ecosystem":"","name":"skipped"}}]}`,
			check: func(t *testing.T, r Record) {
				if r.DatabaseSeverity != "MODERATE" || len(r.Affected) != 1 || r.Affected[0].Urgency != "low" || r.Affected[0].DatabaseSeverity != "" {
					t.Errorf("got %+v", r)
				}
				if r.Affected[0].Release() != "12" {
					t.Errorf("release %q", r.Affected[0].Release())
				}
			}},
	}
	tests = append(tests, platformCases...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseRecord([]byte(tt.in))
			if tt.wantWd {
				if !errors.Is(err, ErrWithdrawn) || r.ID == "" {
					t.Fatalf("got %v, %+v; want ErrWithdrawn with the record", err, r)
				}
				return
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestParseRecordTestdata(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.json")
	if len(files) < 8 {
		t.Fatalf("only %d testdata records", len(files))
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRecord(data); err != nil && !errors.Is(err, ErrWithdrawn) {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.json")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(`{"id":"a","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err == nil && r.ID == "" {
			t.Fatal("accepted a record without id")
		}
		for _, a := range r.Affected {
			_ = a.Release()
			if a.Name == "" || a.Ecosystem == "" {
				t.Fatal("kept an affected entry without package")
			}
		}
	})
}

// TestPlatformAdmits checks the platform rule: an entry applies to a binary
// unless every platform limit excludes its GOOS or its GOARCH, an unknown
// GOOS or GOARCH being admitted by every list.
func TestPlatformAdmits(t *testing.T) {
	windows := Affected{Platforms: []Platform{{GOOS: []string{"windows"}}}}
	linuxARM := Affected{Platforms: []Platform{{GOOS: []string{"linux"}, GOARCH: []string{"arm64"}}, {GOOS: []string{"darwin"}}}}
	for _, c := range []struct {
		a            Affected
		goos, goarch string
		want         bool
	}{
		{Affected{}, "linux", "amd64", true},
		{windows, "windows", "amd64", true},
		{windows, "linux", "amd64", false},
		{windows, "", "", true},
		{windows, "", "amd64", true},
		{windows, "linux", "", false},
		{linuxARM, "linux", "arm64", true},
		{linuxARM, "linux", "amd64", false},
		{linuxARM, "darwin", "amd64", true},
		{linuxARM, "windows", "arm64", false},
		{linuxARM, "linux", "", true},
		{linuxARM, "", "amd64", true},
	} {
		if got := c.a.AffectsPlatform(c.goos, c.goarch); got != c.want {
			t.Errorf("%+v.AffectsPlatform(%q, %q) = %v, want %v", c.a.Platforms, c.goos, c.goarch, got, c.want)
		}
	}
}
