// Package gate makes one admission decision per push or pull: it gathers the evidence the
// policy needs, evaluates the policy, applies the environment's fail mode when evidence is
// missing, and records the decision.
package gate
