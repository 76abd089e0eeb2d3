package audit

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

type failing struct{}

func (failing) Record(context.Context, Event) error { return errors.New("sink down") }

func TestFanoutRecordsToEveryRecorderDespiteAFailure(t *testing.T) {
	var a, b bytes.Buffer
	f := Fanout{NewJSONSink(&a), failing{}, NewJSONSink(&b)}
	err := f.Record(context.Background(), Event{Type: TypeDecision, Repository: "team/app"})
	if err == nil || !strings.Contains(err.Error(), "sink down") {
		t.Fatalf("err = %v, want the failing recorder's error", err)
	}
	for i, buf := range []*bytes.Buffer{&a, &b} {
		if !strings.Contains(buf.String(), `"repository":"team/app"`) {
			t.Errorf("recorder %d got %q", i, buf.String())
		}
	}
}
