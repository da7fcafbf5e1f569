package secret

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// ErrBusy is a verification that found no free slot in time: the server
// answers temporarily_unavailable rather than queue without bound.
var ErrBusy = errors.New("secret hash verifier is busy")

// DefaultMaxWait is how long a verification waits for a slot.
const DefaultMaxWait = 2 * time.Second

// maxSlots caps the pool whatever the core count, so that its memory
// stays within maxSlots × MaxArgon2Memory = 256 MiB.
const maxSlots = 4

// DefaultSlots is one slot per core but one, between 1 and 4: a flood of
// wrong secrets leaves a core to everything else the server does (plain
// secrets, private_key_jwt, subject token checks), and at most 4 argon2id
// verifications of 64 MiB are in memory at once.
func DefaultSlots() int {
	return min(max(1, runtime.GOMAXPROCS(0)-1), maxSlots)
}

// Pool runs slow hash verifications a few at a time. A caller waits for a
// slot at most the pool's wait bound, or until its context ends, and then
// gets ErrBusy: waiting requests hold only a goroutine, never hash memory.
type Pool struct {
	slots   chan struct{}
	maxWait time.Duration
	runs    atomic.Uint64
}

// NewPool returns a pool of slots (DefaultSlots if 0) whose callers wait
// at most maxWait (DefaultMaxWait if 0).
func NewPool(slots int, maxWait time.Duration) *Pool {
	if slots <= 0 {
		slots = DefaultSlots()
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	return &Pool{slots: make(chan struct{}, slots), maxWait: maxWait}
}

// MaxWait is how long a caller waits for a slot; a server's Retry-After.
func (p *Pool) MaxWait() time.Duration { return p.maxWait }

// Do runs fn in a slot. It returns an error wrapping ErrBusy, without
// running fn, when no slot is free within the wait bound or ctx ends first.
func (p *Pool) Do(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrBusy, err)
	}
	select {
	case p.slots <- struct{}{}:
	default:
		timer := time.NewTimer(p.maxWait)
		defer timer.Stop()
		select {
		case p.slots <- struct{}{}:
		case <-timer.C:
			return fmt.Errorf("%w: no slot free within %s", ErrBusy, p.maxWait)
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
		}
	}
	defer func() { <-p.slots }()
	fn()
	return nil
}

// Verify checks secret against h in a slot of the pool.
func (p *Pool) Verify(ctx context.Context, h *Params, secret string) (bool, error) {
	var ok bool
	err := p.Do(ctx, func() {
		p.runs.Add(1)
		ok = h.Verify(secret)
	})
	return ok, err
}

// Verifications counts the hash verifications the pool has run.
func (p *Pool) Verifications() uint64 { return p.runs.Load() }
