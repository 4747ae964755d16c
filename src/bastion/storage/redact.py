"""Database errors without the values of the statement that failed.

PostgreSQL's error reports quote data: a unique violation's ``DETAIL`` names the key
(``Key (token_hash)=(…)``), a not-null or check violation prints the whole row
(``Failing row contains (…, $argon2id$…)``), a data exception quotes the input it could
not read. SQLAlchemy copies that text into its own exception (its parameters are already
hidden: ``hide_parameters``), and a traceback then prints it to a log or a terminal. So
every database error is rewritten where it is raised (``Database``'s ``handle_error``
hook) and again wherever Bastion prints a traceback (``bastion.logs``, the command
line, the server's start-up): what remains is the error's class, its SQLSTATE and, for
the classes whose first line names only objects (constraints, tables, columns), that
line. The structured fields (``diag.constraint_name``, ``sqlstate``) stay readable to
code that handles the error.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError

__all__ = ["redact_database_errors"]

# SQLSTATE classes whose primary message names objects, never values: connection (08),
# integrity constraints (23), transaction state (25), authorisation (28), rollbacks
# such as serialisation failures and deadlocks (40), syntax and undefined objects (42),
# resources (53, 54), object state (55), operator intervention (57), system (58),
# Bastion's own triggers (P0: "audit_events is append-only").
_NAMING_CLASSES = frozenset(
    {"08", "23", "25", "28", "40", "42", "53", "54", "55", "57", "58", "P0"}
)
_DONE = "_bastion_redacted"


def redact_database_errors(error: BaseException | None) -> None:
    """Rewrite, in place, every database error in ``error``'s chain (causes, contexts)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, DBAPIError) and error.orig is not None:
            _redact_driver_error(error.orig)
            orig = error.orig
            error.args = (f"({type(orig).__module__}.{type(orig).__name__}) {orig}",)
            error.hide_parameters = True
        else:
            _redact_driver_error(error)
        error = error.__cause__ or error.__context__


def _redact_driver_error(error: BaseException) -> None:
    """psycopg's errors: keep the SQLSTATE and, when it names only objects, the first line."""
    diag: Any = getattr(error, "diag", None)
    if diag is None or not type(error).__module__.startswith("psycopg") or _is_done(error):
        return
    state = str(getattr(error, "sqlstate", None) or "")
    primary = getattr(diag, "message_primary", None)
    if state[:2] in _NAMING_CLASSES and primary:
        text = f"{primary} [SQLSTATE {state}; details withheld]"
    else:
        text = f"{type(error).__name__} [SQLSTATE {state or 'unknown'}; message withheld]"
    error.args = (text,)
    setattr(error, _DONE, True)


def _is_done(error: BaseException) -> bool:
    return bool(getattr(error, _DONE, False))
