// Package vulndbtest fetches the real OSV records that tests of the vulnerability database run against.
package vulndbtest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// GoVulnDBVersion is the pinned version of the Go module golang.org/x/vulndb
// whose data/osv directory holds the Go advisories tests use.
const GoVulnDBVersion = "v0.0.0-20261105234957-e22db6528018"

// GoOSVDir returns the data/osv directory of golang.org/x/vulndb at
// GoVulnDBVersion, downloading the module into the module cache with
// "go mod download" (through GOPROXY) if needed. When that fails the test
// is skipped, loudly, or failed when the CI environment variable is "true".
func GoOSVDir(t testing.TB) string {
	t.Helper()
	cmd := exec.Command("go", "mod", "download", "-json", "golang.org/x/vulndb@"+GoVulnDBVersion)
	cmd.Dir = os.TempDir() // outside any module: no go.mod is read or changed
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if err == nil {
		err = json.Unmarshal(out, &info)
	}
	dir := filepath.Join(info.Dir, "data", "osv")
	if err == nil {
		_, err = os.Stat(dir)
	}
	if err != nil || info.Error != "" {
		msg := "REAL OSV DATA UNAVAILABLE: go mod download golang.org/x/vulndb@" + GoVulnDBVersion + " failed"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v %s", msg, err, info.Error)
		}
		t.Skipf("%s: %v %s", msg, err, info.Error)
	}
	return dir
}
