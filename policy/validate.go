package policy

// validateReferences reports problems that span entries: duplicate
// environment names and rule ids, and rules naming environments that do
// not exist. It then drops the parse-time bookkeeping from p.
func validateReferences(r *reader, p *Policy) {
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
	for _, ru := range p.rules {
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
		if ru.Type == TypeImmutable && len(ru.Actions) > 0 && !ru.selectsAction(ActionPush) {
			f := ru.fields["actions"]
			r.add(f.path, f.value, "immutable rules concern pushes only, but actions are [%s]", joinActions(ru.Actions))
		}
	}
	for i := range p.envs {
		p.envs[i].nameNode = nil
	}
	for i := range p.rules {
		p.rules[i].fields = nil
		p.rules[i].envItems = nil
	}
}
