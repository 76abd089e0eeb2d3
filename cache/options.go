package cache

import (
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Option adjusts an optional setting of NewMemory, NewRedis, NewResilient or NewFlight;
// each constructor ignores the options that do not concern it.
type Option func(*settings)

type settings struct {
	meter      metric.MeterProvider
	timeout    time.Duration
	probeMin   time.Duration
	probeMax   time.Duration
	checkEvery time.Duration
	pollMin    time.Duration
	pollMax    time.Duration
}

func newSettings(opts []Option) settings {
	s := settings{
		meter:      noop.NewMeterProvider(),
		timeout:    500 * time.Millisecond,
		probeMin:   100 * time.Millisecond,
		probeMax:   5 * time.Second,
		checkEvery: 5 * time.Second,
		pollMin:    20 * time.Millisecond,
		pollMax:    500 * time.Millisecond,
	}
	for _, o := range opts {
		o(&s)
	}
	return s
}

// WithMeterProvider records the package's metrics with mp instead of discarding them.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(s *settings) {
		if mp != nil {
			s.meter = mp
		}
	}
}

// WithTimeout bounds every single call to Redis (NewRedis) or to the primary store
// (NewResilient); the default is 500ms.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithProbeBackoff sets how often NewResilient pings a primary it considers down: first
// after min, then doubling up to max, with jitter; the defaults are 100ms and 5s.
func WithProbeBackoff(min, max time.Duration) Option {
	return func(s *settings) {
		if min > 0 && max >= min {
			s.probeMin, s.probeMax = min, max
		}
	}
}

// WithCheckInterval sets how often NewResilient pings a primary it considers up, so that
// Status notices an outage even when no call fails; the default is 5s.
func WithCheckInterval(d time.Duration) Option {
	return func(s *settings) {
		if d > 0 {
			s.checkEvery = d
		}
	}
}

// WithPollBackoff sets how often a Flight waiting for another holder looks for its value:
// first after min, then doubling up to max, with jitter; the defaults are 20ms and 500ms.
func WithPollBackoff(min, max time.Duration) Option {
	return func(s *settings) {
		if min > 0 && max >= min {
			s.pollMin, s.pollMax = min, max
		}
	}
}
