package clientconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File is one generated configuration file: its path relative to the output directory
// (slash-separated) and its content.
type File struct {
	Path string
	Data []byte
}

// Write writes files under dir, creating directories as needed, each file readable by
// everyone (clients read them as root or as their own user; they hold no secret).
func Write(dir string, files []File) error {
	for _, f := range files {
		if f.Path == "" || filepath.IsAbs(f.Path) || strings.Contains("/"+f.Path+"/", "/../") {
			return fmt.Errorf("refusing to write %q: not a relative path inside %s", f.Path, dir)
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return nil
}
