package policy

import (
	"testing"
	"time"
)

func TestTagsImmutable(t *testing.T) {
	p, err := Parse([]byte(`version: 1
environments:
  - name: prod
    repositories: ["prod/**"]
  - name: dev
    repositories: ["**"]
rules:
  - id: immutable-prod
    type: immutable
    mode: block
    environments: [prod]
  - id: immutable-dev
    type: immutable
    mode: block
    enforceFrom: 2026-12-15
    environments: [dev]
`))
	if err != nil {
		t.Fatal(err)
	}
	before := time.Date(2026, 12, 14, 12, 0, 0, 0, time.UTC)
	from := time.Date(2026, 12, 15, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		repo string
		now  time.Time
		want bool
	}{
		{"prod/api", before, true},
		{"team/api", before, false}, // only warns before enforceFrom: tags can still move
		{"team/api", from, true},
	}
	for _, c := range cases {
		if got := p.TagsImmutable(c.repo, "", c.now); got != c.want {
			t.Errorf("TagsImmutable(%s, %s) = %v, want %v", c.repo, c.now.Format(time.DateOnly), got, c.want)
		}
	}
	obs, err := Builtin("observe")
	if err != nil {
		t.Fatal(err)
	}
	if obs.TagsImmutable("prod/api", "", from) {
		t.Error("the observe policy protects tags, but it only records moves")
	}
}
