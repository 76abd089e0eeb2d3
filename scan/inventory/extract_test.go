package inventory

import (
	"errors"
	"testing"
)

// checkExtractResult fails t unless err is nil or one of the error kinds
// extractors document (*ParseError, *LimitError), and pkgs is within the
// per-file bound.
func checkExtractResult(t *testing.T, pkgs []Package, err error) {
	t.Helper()
	var pe *ParseError
	var le *LimitError
	if err != nil && !errors.As(err, &pe) && !errors.As(err, &le) {
		t.Fatalf("error of type %T: %v", err, err)
	}
	if len(pkgs) > MaxPackagesPerFile {
		t.Fatalf("%d packages, over MaxPackagesPerFile", len(pkgs))
	}
}
