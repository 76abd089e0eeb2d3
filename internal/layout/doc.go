// Package layout holds the test that keeps the import rules of the project's layout true:
// dependencies point inward, toward policy.
package layout
