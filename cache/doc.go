// Package cache stores bytes with a TTL in Redis or in memory, shared by every gateway replica, and keeps serving when Redis fails.
package cache
