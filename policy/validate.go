package policy

import "strings"

// validateReferences reports problems that span entries: duplicate
// authority names and keys, duplicate environment names and rule ids, and
// rules naming environments or authorities that do not exist. It resolves
// the authorities of signature rules, then drops the parse-time
// bookkeeping from p.
func validateReferences(r *reader, p *Policy) {
	auths := r.distinctAuthorities(p.authorities)
	envs := map[string]string{}
	for _, e := range p.envs {
		if e.Name == "" {
			continue
		}
		if first, dup := envs[e.Name]; dup {
			r.add(e.path+".name", e.nameNode, "duplicate of %s.name", first)
			continue
		}
		envs[e.Name] = e.path
	}
	ids := map[string]string{}
	for i, ru := range p.rules {
		if f, ok := ru.fields["id"]; ok && ru.ID != "" {
			if first, dup := ids[ru.ID]; dup {
				r.add(f.path, f.value, "duplicate of %s.id", first)
			} else {
				ids[ru.ID] = ru.path
			}
		}
		for _, it := range ru.envItems {
			if _, ok := envs[it.value]; ok || it.value == DefaultEnvironment {
				continue
			}
			r.add(it.path, it.node, "no environment named %q", it.value)
		}
		for _, it := range ru.authItems {
			a, ok := auths[it.value]
			if !ok {
				r.add(it.path, it.node, "no authority named %q%s", it.value, authorityNames(p.authorities))
				continue
			}
			p.rules[i].auths = append(p.rules[i].auths, a.Authority)
		}
		if ru.Type == TypePlatform {
			r.checkPlatformRule(&p.rules[i], p.envs)
		}
		if ru.Type == TypeImmutable && len(ru.Actions) > 0 && !ru.selectsAction(ActionPush) {
			f := ru.fields["actions"]
			r.add(f.path, f.value, "immutable rules concern pushes only, but actions are [%s]", joinActions(ru.Actions))
		}
	}
	for i, e := range p.envs {
		for _, it := range e.ciAuthItems {
			a, ok := auths[it.value]
			if !ok {
				r.add(it.path, it.node, "no authority named %q%s", it.value, authorityNames(p.authorities))
				continue
			}
			p.envs[i].CIScans.Trusted = append(p.envs[i].CIScans.Trusted, a.Authority)
		}
	}
	dropAuthorityNodes(p.authorities)
	for i := range p.envs {
		p.envs[i].nameNode = nil
		p.envs[i].ciAuthItems = nil
	}
	for i := range p.rules {
		p.rules[i].fields = nil
		p.rules[i].envItems = nil
		p.rules[i].authItems = nil
	}
}

// authorityNames lists the names of as for a message: " (the authorities
// section names a, b)", or a hint to add one when there are none.
func authorityNames(as []authority) string {
	var names []string
	for _, a := range as {
		if nameRE.MatchString(a.Name) && !oneOf(a.Name, names) {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 {
		return " (add it under authorities)"
	}
	return " (want one of " + strings.Join(names, ", ") + ")"
}

// distinctAuthorities reports authorities sharing a name or a key and
// returns the authorities by name (the first of each name).
func (r *reader) distinctAuthorities(as []authority) map[string]*authority {
	auths := map[string]*authority{}
	keys := map[string]*authority{}
	for i := range as {
		a := &as[i]
		if a.Name != "" {
			if first, dup := auths[a.Name]; dup {
				r.add(a.path+".name", a.nameNode, "duplicate of %s.name", first.path)
			} else {
				auths[a.Name] = a
			}
		}
		if k := a.Keyless; k != nil {
			id := "keyless\x00" + k.Issuer + "\x00" + k.Subject + "\x00" + k.SubjectRegExp + "\x00" + string(k.TrustedRootJSON)
			if first, dup := keys[id]; dup {
				r.add(a.keyField.path, a.keyField.value, "same identity and trusted root as %s (%s): a threshold counts distinct authorities, so give each identity one name", first.path, first.Name)
				continue
			}
			keys[id] = a
			continue
		}
		if a.der == nil {
			continue
		}
		if first, dup := keys[string(a.der)]; dup {
			r.add(a.keyField.path, a.keyField.value, "same key as %s (%s): a threshold counts distinct keys, so give each key one name", first.path, first.Name)
			continue
		}
		keys[string(a.der)] = a
	}
	return auths
}

// dropAuthorityNodes drops the parse-time bookkeeping of as.
func dropAuthorityNodes(as []authority) {
	for i := range as {
		as[i].nameNode = nil
		as[i].keyField = field{}
	}
}
