"""Issue 2 figures: a password + TOTP login against one bare argon2id verify, and token costs.

Login: a real server with the production ``owasp`` argon2 profile. Users are created
(the first by the bootstrap password, the others in the database with an owasp hash),
then everything goes through HTTP: password login → ``enrollment_required`` token →
``POST /me/factors/totp`` → activate with a pyotp code → password + TOTP logins.

A TOTP time step is accepted once per factor, so each user yields at most the steps
``now`` and ``now + 1`` (the server accepts ±1 step) after activating with ``now - 1``:
``USERS`` users give about ``2 x USERS`` logins without waiting for the clock.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyotp

from bastion.factors.password import make_hasher
from bastion.tokens import (
    VerifiedAccessToken,
    VerifiedTokenCache,
    parse_secret,
    verify_access_token,
)
from bench.report import Results, fmt, ratio
from bench.servers import ADMIN_PASSWORD, Credentials, ServerProcess, open_runtime, start

USERS = 10
ARGON2_ROUNDS = 10  # before and again after the logins


@dataclass
class TotpUser:
    username: str
    totp: pyotp.TOTP
    last_step: int


@dataclass(frozen=True)
class Login:
    password_s: float  # POST /auth/login round trip
    verify_s: float  # POST /auth/login/{tx}/verify round trip
    access_token: str

    @property
    def total_s(self) -> float:
        return self.password_s + self.verify_s


def _step() -> int:
    return int(time.time()) // 30


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


def enrol(client: httpx.Client, username: str) -> TotpUser:
    """First login (enrollment_required) → TOTP factor → activated with the code of now - 1."""
    first = client.post("/auth/login", json={"username": username, "password": ADMIN_PASSWORD})
    first.raise_for_status()
    body = first.json()
    if body.get("status") != "enrollment_required":
        raise RuntimeError(f"{username}: expected enrollment_required, got {body.get('status')}")
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    started = client.post("/me/factors/totp", json={}, headers=bearer)
    started.raise_for_status()
    factor = started.json()
    totp = pyotp.TOTP(factor["secret"])
    for step in (_step() - 1, _step()):
        activated = client.post(
            f"/me/factors/totp/{factor['factor_id']}/activate",
            json={"code": totp.generate_otp(step)},
            headers=bearer,
        )
        if activated.status_code == 200:
            return TotpUser(username, totp, step)
    raise RuntimeError(f"{username}: TOTP activation failed: {activated.text}")


def login(client: httpx.Client, user: TotpUser) -> Login | None:
    """One password + TOTP login; None when this user has no unused step left right now."""
    step = max(user.last_step + 1, _step())
    if step > _step() + 1:
        return None
    credentials = {"username": user.username, "password": ADMIN_PASSWORD}
    started, password_s = _timed(lambda: client.post("/auth/login", json=credentials))
    started.raise_for_status()
    transaction = started.json()
    if transaction.get("status") != "mfa_required":
        raise RuntimeError(f"expected mfa_required, got {transaction}")
    code = {"method": "totp", "code": user.totp.generate_otp(step)}
    path = f"/auth/login/{transaction['transaction_id']}/verify"
    finished, verify_s = _timed(lambda: client.post(path, json=code))
    user.last_step = step
    if finished.status_code != 200:  # the clock moved past the step: not a sample
        return None
    return Login(password_s, verify_s, finished.json()["access_token"])


def _argon2_verify_s(rounds: int) -> list[float]:
    hasher = make_hasher("owasp")
    stored = hasher.hash(ADMIN_PASSWORD)
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        hasher.verify(stored, ADMIN_PASSWORD)
        samples.append(time.perf_counter() - started)
    return samples


def _round_trip_s(client: httpx.Client, rounds: int = 300) -> float:
    samples = []
    for _ in range(rounds):
        response, elapsed = _timed(lambda: client.get("/healthz"))
        response.raise_for_status()
        samples.append(elapsed)
    return statistics.median(samples)


def _per_call_us(work: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Median over ``repeats`` batches of the mean µs per call."""
    batches = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            work()
        batches.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(batches)


def run(root: Path, results: Results) -> None:
    server = start(root / "auth" / "data")
    try:
        _logins(server, results)
    finally:
        server.stop()


def _logins(server: ServerProcess, results: Results) -> None:
    credentials = Credentials(server.data_dir, server.env)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        users = [enrol(client, "admin")]
        users += [
            enrol(client, credentials.user(role="viewer", password=ADMIN_PASSWORD))
            for _ in range(USERS - 1)
        ]
        argon2 = _argon2_verify_s(ARGON2_ROUNDS)
        samples = [found for user in users for _ in range(2) if (found := login(client, user))]
        argon2 += _argon2_verify_s(ARGON2_ROUNDS)
        round_trip = _round_trip_s(client)
    if len(samples) < USERS:
        raise RuntimeError(f"only {len(samples)} logins succeeded")

    bare = statistics.median(argon2)
    password_s = statistics.median(s.password_s for s in samples)
    verify_s = statistics.median(s.verify_s for s in samples)
    total = statistics.median(s.total_s for s in samples)
    server_side = total - 2 * round_trip
    login_ratio = server_side / bare

    section = results.section(
        "Login: password + TOTP vs one bare argon2id verify (issue 2)", "figure", "value", "note"
    )
    section.add(
        "bare argon2id verify (owasp: m=19 MiB, t=2, p=1)",
        f"{bare * 1e3:.1f} ms",
        f"median of {len(argon2)}, make_hasher('owasp').verify in this process",
    )
    section.add("POST /auth/login (password)", f"{password_s * 1e3:.1f} ms", "median round trip")
    section.add(
        "POST /auth/login/{tx}/verify (TOTP)", f"{verify_s * 1e3:.1f} ms", "median round trip"
    )
    section.add(
        "full login, client-observed",
        f"{total * 1e3:.1f} ms",
        f"median of {len(samples)} logins ({USERS} users with an active TOTP factor)",
    )
    section.add(
        "loopback HTTP round trip (GET /healthz)", f"{round_trip * 1e3:.2f} ms", "median of 300"
    )
    section.add(
        "full login, server side",
        f"{server_side * 1e3:.1f} ms",
        "client-observed - 2 x loopback round trip",
    )
    section.add("login ÷ bare argon2id verify", ratio(login_ratio), "server side ÷ bare verify")
    section.notes.append(
        "Each login is two requests; the password step runs one argon2id verify (owasp), "
        "the TOTP step checks the code, signs an EdDSA access token and writes the session "
        "and audit rows. Every TOTP code is a fresh, never-used time step."
    )
    results.headline(
        "login ÷ argon2id verify",
        ratio(login_ratio),
        f"server-side time of a password + TOTP login ({server_side * 1e3:.1f} ms) over one "
        f"bare argon2id verify ({bare * 1e3:.1f} ms); 1.0 would be argon2 alone",
    )
    _token_costs(server, credentials, samples[-1].access_token, results)


def _token_costs(
    server: ServerProcess, credentials: Credentials, token: str, results: Results
) -> None:
    api_key = credentials.api_key(role="viewer")
    rt = open_runtime(server)
    try:
        now = rt.clock.now()

        def verify() -> VerifiedAccessToken:
            return verify_access_token(
                token=token,
                keyring=rt.keyring,
                issuer=rt.settings.resolved_issuer,
                audience=rt.settings.audience,
                now=now,
                leeway=rt.settings.clock_skew,
            )

        cache = VerifiedTokenCache()
        cache.put(token, verify())
        uncached = _per_call_us(verify, 400)
        hit = _per_call_us(lambda: cache.get(token, now=now), 20_000)
        key_hash = _per_call_us(lambda: parse_secret(api_key, "api_key"), 20_000)
    finally:
        rt.close()
    section = results.section("Token verification per request (issue 2)", "figure", "value", "note")
    section.add(
        "verify_access_token, uncached (EdDSA + claims)",
        f"{uncached:.1f} µs",
        "a real access token from the login above",
    )
    section.add("verified-token cache hit", f"{hit:.2f} µs", "VerifiedTokenCache.get (SHA-256 key)")
    section.add("API key: shape check + SHA-256", f"{key_hash:.2f} µs", "parse_secret")
    section.add("uncached ÷ cache hit", fmt(uncached / hit, 0) + "x", "")
    section.notes.append(
        "The guard also re-reads the session / key state from the database at most every "
        "0.5 s per credential (liveness cache); its HTTP cost is in the guard table below."
    )
    results.headline(
        "token verify: uncached / cache hit",
        f"{uncached:.0f} µs / {hit:.1f} µs",
        "per-request cost of checking an access token, without and with the verified-token cache",
    )
