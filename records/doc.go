// Package records keeps what the gateway cannot recompute (the tag ledger, first sightings,
// baselines, reminder marks and decisions) in a SQLite file or a shared PostgreSQL database.
package records
