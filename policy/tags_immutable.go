package policy

import "time"

// TagsImmutable reports whether the gateway itself forbids moving tags of repo (pushed
// through host) at now: an immutable rule selects pushes there and blocks today. Only
// then may a tag's digest be remembered: through the gateway, it cannot change.
func (p *Policy) TagsImmutable(repo, host string, now time.Time) bool {
	env := p.Environment(repo, host)
	for i := range p.rules {
		r := &p.rules[i]
		if r.Type != TypeImmutable || r.mismatch(env, ActionPush, repo) != "" {
			continue
		}
		if mode, _ := effectiveMode(r.Mode, r.ObserveUntil, r.EnforceFrom, now); mode == ModeBlock {
			return true
		}
	}
	return false
}
