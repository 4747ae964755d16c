"""Second-factor guessing limits across transactions (issue 11.2).

A login or step-up transaction dies after ``max_attempts`` wrong codes, but a new one is
a password (or a session) away, so these limits hold across transactions. They live in
the database (``authn.throttle``: every worker and replica counts the same failures) and
apply to every method by its registered property (``factors.catalog`` ``guessable``), not
by a branch per method:

- per method of the account (``totp``, ``recovery_code``…; activating a pending factor
  counts on that factor alone): 5 free failures, then every further attempt waits 30 s
  after the last failure, doubling with each failure up to an hour. The method is locked
  that long whatever code comes next (even the right one is not looked at);
- per account, every guessable method together: 100 failures (NIST SP 800-63B-4 §3.2.2)
  lock every guessable method until a success with a method that cannot be guessed
  (WebAuthn), an administrator's unlock (``authn.unlock``) or 30 days.

A right password never clears these counts (the password step does not touch them); a
verified second factor clears the account's. A method that cannot be guessed (a
cryptographic assertion) is never counted nor locked: its failures are only audited.

The trade-off (SECURITY.md): whoever drives these counts already holds the password or a
live session, so they cannot be used by strangers to lock an owner out. Someone who does
hold the password can delay the owner's authenticator app for up to an hour at a time
and, after days of guessing, stop the guessable methods until an admin unlocks them; the
owner can still use another method (each has its own delays) or a security key, every
failure and lock is in the audit log, and the admin's unlock is audited too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from bastion.audit import record
from bastion.authn.throttle import FailureThrottle
from bastion.errors import RateLimited
from bastion.factors.catalog import CATALOG, Method
from bastion.identity.users import User
from bastion.sealing import Sealer
from bastion.storage.schema import factors, users

__all__ = [
    "GUESSING",
    "GuessFailure",
    "GuessLimits",
    "check_guess",
    "clear_guesses",
    "count_failure",
    "guessable",
]

THIRTY_DAYS = 30 * 86_400
ACCOUNT = "*"  # the subject of the account-wide count


@dataclass(frozen=True)
class GuessLimits:
    per_method: FailureThrottle
    per_account: FailureThrottle


GUESSING = GuessLimits(
    per_method=FailureThrottle(
        scope="factor", limit=100, window=THIRTY_DAYS, free=5, first_delay=30, max_delay=3600
    ),
    per_account=FailureThrottle(scope="factor_account", limit=100, window=THIRTY_DAYS),
)


@dataclass(frozen=True)
class GuessFailure:
    """What one failure did to the counts (all zero for a method that cannot be guessed)."""

    failures: int  # the method's (or pending factor's) failures in the window
    account_failures: int  # every guessable method of the account together
    retry_after: int  # seconds the method is now locked for (0: it is not)
    for_good: bool  # the account's limit is reached: locked until a reset


def guessable(method: str) -> bool:
    """Whether ``method`` is a typed secret (counted); unknown methods count (fail closed)."""
    try:
        return CATALOG[Method(method)].guessable
    except ValueError:
        return True


def _key(limits: GuessLimits, sealer: Sealer, user_id: str, subject: str) -> str:
    return limits.per_method.key(sealer, f"{user_id}\x00{subject}")


def _account_key(limits: GuessLimits, sealer: Sealer, user_id: str) -> str:
    return limits.per_account.key(sealer, user_id)


def activation_subject(factor_id: str) -> str:
    """The subject of a pending factor's activation codes."""
    return "activation:" + factor_id


def check_guess(
    conn: Connection,
    sealer: Sealer,
    *,
    user_id: str,
    method: str,
    now: datetime,
    subject: str | None = None,
    limits: GuessLimits = GUESSING,
) -> None:
    """Raise ``RateLimited`` (scope ``second_factor``) while ``method`` is locked; call it
    before looking at the code. ``subject`` (a pending factor's activation) is counted
    alone, apart from the account's sign-in methods."""
    if not guessable(method):
        return
    # PostgreSQL: one verification of this user at a time, so that concurrent guesses
    # are counted one after another (SQLite's write transaction serialises them already).
    conn.execute(select(users.c.id).where(users.c.id == user_id).with_for_update())
    key = _key(limits, sealer, user_id, subject or method)
    waits = [limits.per_method.retry_after(conn, key, now=now)]
    if subject is None:
        account = _account_key(limits, sealer, user_id)
        waits.append(limits.per_account.retry_after(conn, account, now=now))
    wait = max(waits)
    if wait:
        raise RateLimited(wait, scope="second_factor")


def count_failure(
    conn: Connection,
    sealer: Sealer,
    *,
    user: User,
    method: str,
    now: datetime,
    subject: str | None = None,
    limits: GuessLimits = GUESSING,
) -> GuessFailure:
    """Count one wrong code of ``method`` (nothing for a method that cannot be guessed);
    ``factor.locked`` is recorded when the failure locks the method."""
    if not guessable(method):
        return GuessFailure(0, 0, 0, False)
    key = _key(limits, sealer, user.id, subject or method)
    limits.per_method.fail(conn, key, now=now)
    failures = limits.per_method.failures(conn, key, now=now)
    retry_after = limits.per_method.retry_after(conn, key, now=now)
    account_failures = 0
    for_good = False
    if subject is None:
        account = _account_key(limits, sealer, user.id)
        limits.per_account.fail(conn, account, now=now)
        account_failures = limits.per_account.failures(conn, account, now=now)
        for_good = account_failures >= limits.per_account.limit
        if for_good:
            retry_after = max(retry_after, limits.per_account.retry_after(conn, account, now=now))
    if retry_after:
        record(
            conn,
            "factor.locked",
            outcome="failure",
            actor=user.id,
            tenant_id=user.tenant_id,
            resource=f"user:{user.id}",
            reason="account_limit" if for_good else "too_many_failures",
            details={
                "method": method,
                "failures": account_failures if for_good else failures,
                "retry_after": retry_after,
                "activation": subject is not None,
            },
            now=now,
        )
    return GuessFailure(failures, account_failures, retry_after, for_good)


def clear_guesses(
    conn: Connection,
    sealer: Sealer,
    *,
    user_id: str,
    now: datetime,
    limits: GuessLimits = GUESSING,
) -> int:
    """Forget every second-factor failure of the account (a verified second factor, or an
    administrator's unlock); returns how many account-wide failures there were."""
    account = _account_key(limits, sealer, user_id)
    counted = limits.per_account.failures(conn, account, now=now)
    limits.per_account.clear(conn, account)
    subjects = [method.value for method, props in CATALOG.items() if props.guessable]
    pending = conn.execute(select(factors.c.id).where(factors.c.user_id == user_id)).scalars()
    subjects += [activation_subject(factor_id) for factor_id in pending]
    for subject in subjects:
        limits.per_method.clear(conn, _key(limits, sealer, user_id, subject))
    return counted
