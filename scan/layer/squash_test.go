package layer_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/portcullis-dev/portcullis/scan/layer"
)

// stack analyses each layer (gzip) and squashes them, lowest first.
func stack(t *testing.T, layers ...[]entry) ([]layer.Result, layer.Image) {
	t.Helper()
	var results []layer.Result
	for _, entries := range layers {
		results = append(results, analyze(t, gzipLayer(t, entries...), layer.DefaultLimits()))
	}
	return results, layer.Squash(results)
}

// visible lists "path name version layer-index" for the image's packages.
func visible(img layer.Image, results []layer.Result) []string {
	var out []string
	for _, p := range img.Packages {
		i := slices.IndexFunc(results, func(r layer.Result) bool { return r.DiffID == p.Layer })
		out = append(out, p.Path+" "+p.Name+" "+p.Version+" @"+string(rune('0'+i)))
	}
	return out
}

func npmPackage(name, version string) []byte {
	return []byte(`{"name":"` + name + `","version":"` + version + `"}`)
}

func dpkgStanza(name, version string) string {
	return "Package: " + name + "\nStatus: install ok installed\nVersion: " + version + "\n\n"
}

func TestSquashWhiteout(t *testing.T) {
	results, img := stack(t,
		[]entry{
			file("app/node_modules/lodash/package.json", npmPackage("lodash", "4.17.20")),
			file("app/node_modules/left-pad/package.json", npmPackage("left-pad", "1.3.0")),
			file("var/lib/dpkg/status", []byte(dpkgStanza("curl", "7.88.1-10"))),
		},
		[]entry{
			file("app/node_modules/.wh.lodash", nil), // deletes the directory and all in it
			file("var/lib/dpkg/.wh.status", nil),
		},
		[]entry{
			file("app/node_modules/lodash/package.json", npmPackage("lodash", "4.17.21")),
		},
	)
	want := []string{
		"/app/node_modules/left-pad/package.json left-pad 1.3.0 @0",
		"/app/node_modules/lodash/package.json lodash 4.17.21 @2",
	}
	if got := visible(img, results); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSquashOpaqueDir checks that an opaque directory hides all lower content
// beneath it, but not what its own layer puts there, nor its siblings.
func TestSquashOpaqueDir(t *testing.T) {
	results, img := stack(t,
		[]entry{
			file("app/node_modules/a/package.json", npmPackage("a", "1.0.0")),
			file("app/node_modules/b/node_modules/c/package.json", npmPackage("c", "1.0.0")),
			file("app/vendor/node_modules/d/package.json", npmPackage("d", "1.0.0")),
			file("app/node_modules/e/node_modules/f/package.json", npmPackage("f", "1.0.0")),
		},
		[]entry{
			dir("app/node_modules/"),
			file("app/node_modules/.wh..wh..opq", nil),
			file("app/node_modules/g/package.json", npmPackage("g", "2.0.0")),
		},
		[]entry{
			file("app/node_modules/e/node_modules/f/package.json", npmPackage("f", "3.0.0")),
		},
	)
	want := []string{
		"/app/node_modules/e/node_modules/f/package.json f 3.0.0 @2",
		"/app/node_modules/g/package.json g 2.0.0 @1",
		"/app/vendor/node_modules/d/package.json d 1.0.0 @0",
	}
	if got := visible(img, results); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSquashHardlink checks that a hard link keeps its content when the
// path it was linked to is deleted.
func TestSquashHardlink(t *testing.T) {
	exe := testExecutable(t)
	results, img := stack(t,
		[]entry{
			file("usr/bin/app", exe),
			hardlink("usr/local/bin/app", "usr/bin/app"),
			file("srv/app.jar", machineFile(t, "/usr/share/java/commons-io-2.11.0.jar")),
		},
		[]entry{
			file("usr/bin/.wh.app", nil),
			hardlink("srv/copy.jar", "/srv/app.jar"), // to a file of a lower layer
		},
	)
	var paths []string
	for _, f := range img.Files {
		paths = append(paths, f.Path)
	}
	if want := []string{"/srv/app.jar", "/srv/copy.jar", "/usr/local/bin/app"}; !slices.Equal(paths, want) {
		t.Errorf("files %q, want %q", paths, want)
	}
	n := 0
	for _, p := range img.Packages {
		switch p.Path {
		case "/usr/local/bin/app":
			n++
			if p.Layer != results[0].DiffID {
				t.Errorf("%s introduced by %s", p.Name, p.Layer)
			}
		case "/srv/copy.jar":
			if p.Name != "commons-io:commons-io" || p.Layer != results[1].DiffID {
				t.Errorf("copy.jar: %+v", p)
			}
		}
	}
	if want := len(results[0].Files[0].Packages); n != want || n == 0 {
		t.Errorf("%d packages at the hard link, want %d", n, want)
	}
}

// TestSquashOSReleaseAcrossLayers puts this machine's os-release in one layer
// and its /etc/os-release symlink in another, and compares the distro with
// what the shell reads from the machine's own file.
func TestSquashOSReleaseAcrossLayers(t *testing.T) {
	content := machineFile(t, "/usr/lib/os-release")
	target, err := os.Readlink("/etc/os-release")
	if err != nil {
		t.Skipf("/etc/os-release is not a symlink here: %v", err)
	}
	out, err := exec.Command("sh", "-c", `. /etc/os-release && printf '%s\n%s\n%s\n%s' "$ID" "$VERSION_ID" "$VERSION_CODENAME" "$PRETTY_NAME"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(string(out), "\n")
	want := layer.Distro{ID: f[0], VersionID: f[1], VersionCodename: f[2], PrettyName: f[3]}
	if want.ID == "" {
		t.Fatalf("shell read no ID: %q", out)
	}

	base := []entry{file("usr/lib/os-release", content)}
	link := []entry{symlink("etc/os-release", target)}
	if _, img := stack(t, base, link); img.Distro != want {
		t.Errorf("got %+v, want %+v", img.Distro, want)
	}
	// Through a directory symlink, and /etc/os-release winning over /usr/lib.
	viaDir := []entry{
		dir("opt/release/"), file("opt/release/os-release", []byte("ID=other\nVERSION_ID='1.0'\n")),
		symlink("etc/alt", "../opt/release"), symlink("etc/os-release", "alt/os-release"),
	}
	if _, img := stack(t, base, viaDir); img.Distro != (layer.Distro{ID: "other", VersionID: "1.0"}) {
		t.Errorf("via directory symlink: got %+v", img.Distro)
	}
	// A dangling /etc/os-release falls back to /usr/lib/os-release.
	if _, img := stack(t, base, link, []entry{file("usr/lib/.wh.os-release", nil)}); img.Distro != (layer.Distro{}) {
		t.Errorf("deleted target: got %+v", img.Distro)
	}
	if _, img := stack(t, link, []entry{symlink("etc/os-release", "nowhere")}, base); img.Distro != want {
		t.Errorf("fallback: got %+v", img.Distro)
	}
	// A symlink loop ends.
	loop := []entry{symlink("etc/os-release", "a"), symlink("etc/a", "b"), symlink("etc/b", "os-release")}
	if _, img := stack(t, loop); img.Distro != (layer.Distro{}) {
		t.Errorf("loop: got %+v", img.Distro)
	}
}

// TestSquashIntroducedLayer rewrites the real dpkg database in an upper layer,
// as apt-get install does: packages already there keep their base layer.
func TestSquashIntroducedLayer(t *testing.T) {
	status := machineFile(t, "/var/lib/dpkg/status")
	upgraded := strings.Replace(string(status), "\n\n", "\n\n"+dpkgStanza("newpkg", "1.0"), 1)
	results, img := stack(t,
		[]entry{file("var/lib/dpkg/status", status)},
		[]entry{file("var/lib/dpkg/status", []byte(upgraded)), file("app/server", testExecutable(t))},
		[]entry{file("etc/motd", []byte("hello"))},
	)
	base, app := 0, 0
	for _, p := range img.Packages {
		switch {
		case p.Name == "newpkg" || p.Path == "/app/server":
			if p.Layer != results[1].DiffID {
				t.Errorf("%s %s introduced by %s", p.Path, p.Name, p.Layer)
			}
			app++
		case p.Layer == results[0].DiffID:
			base++
		default:
			t.Errorf("%s introduced by %s", p.Name, p.Layer)
		}
	}
	if base != len(results[0].Packages()) || app != len(results[1].Packages())-base {
		t.Errorf("%d base and %d new packages", base, app)
	}
}

// TestSquashReplacedByUnreadEntries checks that a lower file is gone once an
// upper layer puts at its path (or at a directory above it) something the
// analysis did not read.
func TestSquashReplacedByUnreadEntries(t *testing.T) {
	exe := testExecutable(t)
	results, img := stack(t,
		[]entry{
			file("app/server", exe),
			file("opt/tool/bin/tool", exe),
			file("srv/node_modules/x/package.json", npmPackage("x", "1.0.0")),
			file("data/node_modules/y/package.json", npmPackage("y", "1.0.0")),
		},
		[]entry{
			file("app/server", []byte("#!/bin/sh\nexec /app/real-server\n")), // not an executable: not read
			symlink("opt/tool", "/usr/share/tool"),                           // a directory replaced by a symlink
			file("srv/node_modules/x", []byte("now a file")),
			dir("data/"), dir("data/node_modules/"), // directories merge
		},
	)
	want := []string{"/data/node_modules/y/package.json y 1.0.0 @0"}
	if got := visible(img, results); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestSquashUbuntu checks that dpkg packages take the distro's ecosystem.
func TestSquashUbuntu(t *testing.T) {
	// /etc/os-release of ubuntu:22.04.
	ubuntu := `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.4 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
HOME_URL="https://www.ubuntu.com/"
UBUNTU_CODENAME=jammy
`
	_, img := stack(t, []entry{
		file("usr/lib/os-release", []byte(ubuntu)),
		symlink("etc/os-release", "../usr/lib/os-release"),
		file("var/lib/dpkg/status", []byte(dpkgStanza("libc6", "2.35-0ubuntu3.7"))),
		file("app/node_modules/x/package.json", npmPackage("x", "1.0.0")),
	})
	if img.Distro != (layer.Distro{ID: "ubuntu", VersionID: "22.04", VersionCodename: "jammy", PrettyName: "Ubuntu 22.04.4 LTS"}) {
		t.Errorf("distro %+v", img.Distro)
	}
	var ecosystems []string
	for _, p := range img.Packages {
		ecosystems = append(ecosystems, p.Ecosystem)
	}
	if !slices.Equal(ecosystems, []string{"npm", "Ubuntu"}) {
		t.Errorf("ecosystems %q", ecosystems)
	}
}

// TestSquashCachedResults checks that Results survive a JSON round trip (as
// when cached) and squash to the same image.
func TestSquashCachedResults(t *testing.T) {
	entries, _ := machineLayer(t)
	results, img := stack(t, entries, []entry{file("usr/local/bin/.wh.app", nil), file("var/lib/dpkg/status", []byte(dpkgStanza("only", "1")))})
	b, err := json.Marshal(results)
	if err != nil {
		t.Fatal(err)
	}
	var decoded []layer.Result
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(layer.Squash(decoded), img) {
		t.Error("squash of decoded results differs")
	}
	if !decoded[0].Paths.Has("/usr/bin/script") || decoded[0].Paths.Len() != results[0].Paths.Len() {
		t.Error("path set lost in JSON")
	}
	t.Logf("%d bytes of JSON for %d entries", len(b), results[0].Entries+results[1].Entries)
}

func TestSquashIncomplete(t *testing.T) {
	a := analyze(t, tarLayer(t, file("a", nil), file("b", nil)), layer.Limits{MaxEntries: 1})
	b := analyze(t, tarLayer(t, file("c", nil)), layer.DefaultLimits())
	a.DiffID = "sha256:from-the-config"
	img := layer.Squash([]layer.Result{a, b})
	if !img.Incomplete || !slices.Equal(img.IncompleteReasons, []string{"layer 0 (sha256:from-the-config): over 1 entries"}) {
		t.Errorf("got %v %q", img.Incomplete, img.IncompleteReasons)
	}
}

// TestSquashContextDone checks that stacking stops at the analysis's
// deadline and says so, rather than returning a clean image.
func TestSquashContextDone(t *testing.T) {
	var results []layer.Result
	for i := range 3 {
		var entries []entry
		for j := range 2000 {
			entries = append(entries, file("app/node_modules/p"+strconv.Itoa(j)+"/package.json", npmPackage("p"+strconv.Itoa(j), "1."+strconv.Itoa(i)+".0")))
		}
		results = append(results, analyze(t, tarLayer(t, entries...), layer.DefaultLimits()))
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("deadline passed"))
	img := layer.SquashContext(ctx, results)
	if !img.Incomplete || !slices.Equal(img.IncompleteReasons, []string{"stacking the layers: deadline passed"}) || len(img.Packages) != 0 {
		t.Errorf("incomplete %v %q, %d packages", img.Incomplete, img.IncompleteReasons, len(img.Packages))
	}
	if img := layer.SquashContext(context.Background(), results); img.Incomplete || len(img.Packages) != 2000 {
		t.Errorf("incomplete %q, %d packages", img.IncompleteReasons, len(img.Packages))
	}
}
