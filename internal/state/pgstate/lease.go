package pgstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrLeaseLost is wrapped by RenewLease's error when the lease is no longer
// held by the caller: it expired, or another holder took it since. The
// caller must stop the work the lease guarded.
var ErrLeaseLost = errors.New("lease lost")

// TryLease acquires the lease name for holder for ttl, unless another
// holder has it and it has not expired. ok reports whether holder holds the
// lease on return; token is its fencing token (0 when !ok). A holder that
// already holds the lease keeps it and its token, and the expiry moves to
// ttl from now; a holder whose lease expired gets a new, greater token, as
// any new acquisition does. holder should be unique per process (host and
// pid, or a random ID). ttl must be at least a microsecond.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (token int64, ok bool, err error) {
	op := "acquire lease " + name
	if err := checkLease(name, holder, ttl); err != nil {
		return 0, false, s.wrap(op, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, false, s.wrap(op, err)
	}
	// nextval is drawn for every attempt, taken or not: tokens have gaps
	// and are never reused.
	err = s.pool.QueryRow(ctx, `
		INSERT INTO leases AS l (name, holder, token, acquired_at, expires_at)
		VALUES ($1, $2, nextval('lease_tokens'), now(), now() + $3::interval)
		ON CONFLICT (name) DO UPDATE SET
			holder = excluded.holder,
			token = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.token ELSE excluded.token END,
			acquired_at = CASE WHEN l.holder = excluded.holder AND l.expires_at > now() THEN l.acquired_at ELSE now() END,
			expires_at = excluded.expires_at
		WHERE l.expires_at <= now() OR l.holder = excluded.holder
		RETURNING token`,
		name, holder, ttl.Truncate(time.Microsecond)).Scan(&token)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil // held by another
	}
	if err != nil {
		return 0, false, s.opErr(op, err)
	}
	return token, true, nil
}

// RenewLease moves the expiry of the lease name to ttl from now, provided
// holder still holds it with token and it has not expired; otherwise it
// returns an error wrapping ErrLeaseLost and changes nothing. An expired
// lease is not renewed even when nobody took it: whoever held it must
// acquire it again with TryLease, and gets a new token. Renew well within
// ttl (at a third of it, say), so that a slow round trip does not lose the
// lease.
func (s *Store) RenewLease(ctx context.Context, name, holder string, token int64, ttl time.Duration) error {
	op := "renew lease " + name
	if err := checkLease(name, holder, ttl); err != nil {
		return s.wrap(op, err)
	}
	if err := ctx.Err(); err != nil {
		return s.wrap(op, err)
	}
	tag, err := s.pool.Exec(ctx, `
		UPDATE leases SET expires_at = now() + $4::interval
		WHERE name = $1 AND holder = $2 AND token = $3 AND expires_at > now()`,
		name, holder, token, ttl.Truncate(time.Microsecond))
	if err != nil {
		return s.opErr(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("state store %s: %s held by %s with token %d: %w", s.path, op, holder, token, ErrLeaseLost)
	}
	return nil
}

// ReleaseLease gives up the lease name, provided holder holds it with
// token, so that another holder may take it at once instead of after its
// expiry. Releasing a lease that was lost meanwhile changes nothing and is
// not an error. Tokens keep increasing after a release.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string, token int64) error {
	op := "release lease " + name
	if err := checkLease(name, holder, time.Microsecond); err != nil {
		return s.wrap(op, err)
	}
	if err := ctx.Err(); err != nil {
		return s.wrap(op, err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2 AND token = $3`,
		name, holder, token); err != nil {
		return s.opErr(op, err)
	}
	return nil
}

func checkLease(name, holder string, ttl time.Duration) error {
	switch {
	case name == "":
		return errors.New("empty lease name")
	case holder == "":
		return errors.New("empty holder")
	case ttl < time.Microsecond:
		return fmt.Errorf("ttl %v is shorter than a microsecond", ttl)
	}
	if err := checkName("lease name", name); err != nil {
		return err
	}
	return checkName("holder", holder)
}
