"""Settings from ``BASTION_*`` environment variables and an optional TOML file.

Precedence: explicit arguments > environment > TOML file (``BASTION_CONFIG``) > defaults.
Every value is validated at start; a bad value stops the server with a message that
names the setting and says what is accepted. An unknown ``BASTION_*`` variable is an
error too (a typo such as ``BASTION_PROT`` must not be ignored), as an unknown TOML key is.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass
from logging.handlers import SysLogHandler
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

from pydantic import (
    Field,
    FilePath,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bastion.errors import ConfigurationError

MAX_ACCESS_TOKEN_TTL = 15 * 60
# ``BASTION_*`` variables that are read but are not settings: the settings file, and the
# address and access token of a server for `bastion backup` / `bastion restore --url`
# (docs/backup.md).
NOT_SETTINGS = frozenset({"BASTION_CONFIG", "BASTION_URL", "BASTION_TOKEN"})


class Settings(BaseSettings):
    """Every setting Bastion reads. Documented in docs/configuration.md (a test checks)."""

    model_config = SettingsConfigDict(env_prefix="BASTION_", extra="forbid", frozen=True)

    data_dir: Path = Field(Path("./data"), description="Folder for the database, keys and indexes.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default is SQLite in the data dir "
        "(postgresql+psycopg://… for scale-out).",
    )
    host: str = Field("127.0.0.1", description="Address `bastion serve` listens on.")
    port: int = Field(6333, ge=1, le=65535, description="Port `bastion serve` listens on.")
    workers: int = Field(
        1,
        ge=0,
        le=64,
        description="Worker processes `bastion serve` runs (0: one per CPU core). On SQLite "
        "each holds its own copy of the collections in memory; on PostgreSQL each is just "
        "another replica.",
    )
    public_url: str | None = Field(
        None,
        description="External base URL, absolute http(s) (setup links, token `iss`, WebAuthn "
        "origin); default `http://localhost:PORT` when the host is a loopback address, else "
        "`http://HOST:PORT` (`https` with TLS).",
    )
    issuer: str | None = Field(None, description="Token `iss`; defaults to the public URL.")
    audience: str = Field("bastion", description="Token `aud` expected on every access token.")
    access_token_ttl: int = Field(
        900, ge=30, le=MAX_ACCESS_TOKEN_TTL, description="Access token lifetime in seconds (≤ 900)."
    )
    refresh_token_ttl: int = Field(
        8 * 3600, ge=300, le=30 * 86400, description="Refresh token (session) lifetime in seconds."
    )
    clock_skew: int = Field(
        30, ge=0, le=120, description="Accepted clock skew for tokens, seconds."
    )
    login_transaction_ttl: int = Field(
        300, ge=30, le=900, description="Lifetime of a login transaction, seconds."
    )
    login_max_attempts: int = Field(
        5, ge=1, le=20, description="Wrong codes after which a login transaction dies."
    )
    argon2_profile: Literal["owasp", "test"] = Field(
        "owasp",
        description="`owasp` (m=19 MiB, t=2, p=1) in production; "
        "`test` is fast and weak, for tests only.",
    )
    bootstrap_admin_password: SecretStr | None = Field(
        None, description="Password of the first `admin` user, created on an empty data dir."
    )
    master_key: SecretStr | None = Field(
        None,
        description="Base64 256-bit key sealing stored secrets (TOTP seeds; on PostgreSQL "
        "the signing keys too); default is a 0600 key file in the data dir. Every replica "
        "of one database needs the same key.",
    )
    master_key_file: Path | None = Field(
        None,
        description="File holding the master key (32 raw bytes or their base64, mode 0600), "
        "e.g. a mounted secret; instead of `master_key`.",
    )
    anonymous_read: bool = Field(
        False, description="Allow unauthenticated read-only data-plane access (off by default)."
    )
    max_body_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Largest accepted request body, bytes."
    )
    max_restore_bytes: int = Field(
        64 * 1024**3,
        ge=1024,
        description="Largest backup file `POST /collections/{name}/restore` accepts, bytes "
        "(spooled to the data folder while it is checked).",
    )
    max_payload_bytes: int = Field(
        64 * 1024, ge=256, description="Largest JSON payload of one point, bytes."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Server log level."
    )
    # -- audit checkpoint sinks (docs/audit.md) --------------------------------------------
    audit_checkpoint_sink: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Where each signed audit checkpoint is also sent, outside the data folder: "
        "`file:///abs/path.jsonl`, `syslog://host:514` (UDP), `syslog:///dev/log`, "
        "`https://…` (POST); several separated by commas. Empty: none.",
    )
    audit_checkpoint_http_authorization: SecretStr | None = Field(
        None,
        description="`Authorization` header sent to http(s) checkpoint sinks "
        "(e.g. `Bearer …`, `Splunk …`).",
    )

    @field_validator("audit_checkpoint_sink")
    @classmethod
    def _check_sinks(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        data_dir = info.data.get("data_dir")
        for url in value:
            sink = parse_checkpoint_sink(url)
            if sink.scheme == "file" and sink.path is not None and data_dir is not None:
                _outside_data(sink.path, data_dir, info.data.get("database_url"))
        return value

    @model_validator(mode="after")
    def _sink_credentials_over_tls(self) -> Settings:
        if self.audit_checkpoint_http_authorization is None:
            return self
        for sink in self.checkpoint_sinks:
            if sink.scheme == "http" and sink.host not in ("127.0.0.1", "::1", "localhost"):
                raise ValueError(
                    f"BASTION_AUDIT_CHECKPOINT_HTTP_AUTHORIZATION would cross the network in "
                    f"clear text to {sink.display}: use https://"
                )
        return self

    @property
    def checkpoint_sinks(self) -> tuple[CheckpointSink, ...]:
        return tuple(parse_checkpoint_sink(url) for url in self.audit_checkpoint_sink)

    # --- WebAuthn security keys and passkeys (docs/webauthn.md) ---------------------------
    webauthn_rp_id: str | None = Field(
        None,
        description="WebAuthn relying party ID: a domain name, never an IP address; "
        "default: the host of the public URL.",
    )
    webauthn_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Origins (`https://host[:port]`, comma-separated) allowed to use "
        "WebAuthn; default: the public URL's origin. Several for a console behind a proxy.",
    )
    webauthn_rp_name: str = Field(
        "Bastion", min_length=1, max_length=64, description="Name browsers show for WebAuthn."
    )
    webauthn_attestation: Literal["none", "direct"] = Field(
        "none",
        description="`none`: any authenticator may register; `direct`: only those whose "
        "attestation chains to a root in BASTION_WEBAUTHN_ATTESTATION_ROOTS.",
    )
    webauthn_allowed_aaguids: Annotated[tuple[UUID, ...], NoDecode] = Field(
        (),
        description="Authenticator models (AAGUIDs, comma-separated) allowed to register; "
        "empty: any. Needs `webauthn_attestation = direct`.",
    )
    webauthn_attestation_roots: FilePath | None = Field(
        None, description="PEM file of the attestation root certificates `direct` trusts."
    )
    # -- deployment: TLS and reverse proxies ----------------------------------------------
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="Reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` headers "
        "are believed: addresses or CIDR networks, comma-separated (e.g. "
        "`127.0.0.1,10.0.0.0/8`). Empty (the default): those headers are ignored and the "
        "client address is the TCP peer's.",
    )
    tls_cert: Path | None = Field(
        None,
        description="PEM certificate (chain) `bastion serve` answers TLS with; "
        "with `BASTION_TLS_KEY`.",
    )
    tls_key: Path | None = Field(None, description="PEM private key of `BASTION_TLS_CERT`.")

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator(
        "webauthn_origins", "webauthn_allowed_aaguids", "audit_checkpoint_sink", mode="before"
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("webauthn_rp_id")
    @classmethod
    def _check_rp_id(cls, value: str | None) -> str | None:
        if value is not None and not _is_domain(value):
            raise ValueError(
                "must be a lower-case domain name such as 'vectors.example.com' or "
                "'localhost' (no scheme, port or IP address: browsers refuse those)"
            )
        return value

    @model_validator(mode="after")
    def _check_webauthn(self) -> Settings:
        if self.webauthn_attestation == "direct" and self.webauthn_attestation_roots is None:
            raise ValueError("webauthn_attestation = direct needs webauthn_attestation_roots")
        if self.webauthn_allowed_aaguids and self.webauthn_attestation != "direct":
            raise ValueError(
                "webauthn_allowed_aaguids needs webauthn_attestation = direct (without "
                "verified attestation an AAGUID is only the authenticator's own claim)"
            )
        rp_id = self.resolved_webauthn_rp_id
        if rp_id is None and self.webauthn_origins:
            raise ValueError(
                "webauthn_origins needs webauthn_rp_id (the public URL names no domain)"
            )
        if rp_id is not None and (self.webauthn_rp_id or self.webauthn_origins):
            for origin in self.resolved_webauthn_origins:
                problem = _origin_problem(origin, rp_id)
                if problem:
                    raise ValueError(f"webauthn origin {origin!r}: {problem}")
        return self

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _expand_optional(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @field_validator("public_url")
    @classmethod
    def _absolute_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL, e.g. https://vectors.example.com")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must be a base URL: no user, query or fragment")
        return value.rstrip("/")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):  # from the environment: comma-separated
            value = [part for part in value.split(",") if part.strip()]
        if not isinstance(value, (list, tuple)):
            return value
        networks = []
        for item in value:
            try:
                networks.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP address or CIDR network (e.g. 10.0.0.0/8)"
                ) from None
        return tuple(networks)

    @model_validator(mode="after")
    def _guard_insecure(self) -> Settings:
        if self.master_key is not None and self.master_key_file is not None:
            raise ValueError("set BASTION_MASTER_KEY or BASTION_MASTER_KEY_FILE, not both")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both BASTION_TLS_CERT and BASTION_TLS_KEY")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'bastion.db').resolve()}"

    @property
    def resolved_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def resolved_public_url(self) -> str:
        """The configured public URL, else where ``bastion serve`` listens. A loopback
        address is named ``localhost``: browsers refuse WebAuthn on an IP-address origin."""
        if self.public_url:
            return self.public_url
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{_url_host(self.host)}:{self.port}"

    @property
    def resolved_issuer(self) -> str:
        return self.issuer or self.resolved_public_url

    @property
    def resolved_webauthn_rp_id(self) -> str | None:
        """The RP ID, or ``None`` when it cannot be derived (a public URL on an IP address:
        browsers refuse WebAuthn there, so WebAuthn stays off until a name is configured)."""
        if self.webauthn_rp_id:
            return self.webauthn_rp_id
        host = (urlsplit(self.resolved_public_url).hostname or "").lower()
        return host if _is_domain(host) else None

    @property
    def resolved_webauthn_origins(self) -> tuple[str, ...]:
        if self.webauthn_origins:
            return self.webauthn_origins
        parts = urlsplit(self.resolved_public_url)
        return (f"{parts.scheme}://{parts.netloc}".lower(),)

    # -- risk engine (bastion.risk; docs/risk.md) -----------------------------------------
    risk_geoip_database: Path | None = Field(
        None,
        description="A MaxMind .mmdb (GeoLite2/GeoIP2 City or Country) the risk engine "
        "locates addresses with; default: the GeoLite2 Country data bundled in geoip2fast.",
    )
    risk_anonymiser_networks: Path | None = Field(
        None,
        description="A file of anonymiser / hosting-provider networks (one address or CIDR "
        "a line, # comments) that the risk engine weighs; read at start.",
    )

    # --- observability: logs, metrics (docs/observability.md) -----------------------------
    log_format: Literal["text", "json"] = Field(
        "text", description="`text`, or `json`: one JSON object per line, with `request_id`."
    )
    access_log: bool = Field(
        False,
        description="One log line per request (method, route template, status, duration, "
        "request id); off by default.",
    )
    metrics: Literal["loopback", "token", "off"] = Field(
        "loopback",
        description="Who may read `GET /metrics`: `loopback` (peers on 127.0.0.1/::1 only), "
        "`token` (anyone presenting BASTION_METRICS_TOKEN as a Bearer token), `off`.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        min_length=32,
        max_length=1024,
        description="Scrape token for `metrics = token` (32 to 1024 characters, random).",
    )

    @model_validator(mode="after")
    def _check_metrics(self) -> Settings:
        if (self.metrics == "token") != (self.metrics_token is not None):
            raise ValueError("metrics = token and metrics_token go together: set both or neither")
        return self


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _is_domain(host: str) -> bool:
    """A lower-case DNS name (an RP ID): not an IP address, no port, no trailing dot."""
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False
    except ValueError:
        pass
    labels = host.split(".")
    return 0 < len(host) <= 253 and all(_LABEL.match(label) for label in labels)


def _origin_problem(origin: str, rp_id: str) -> str | None:
    """Why ``origin`` cannot use WebAuthn with ``rp_id`` (WebAuthn §5.1.4.1, §13.4.9)."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if (
        origin != f"{parts.scheme}://{parts.netloc}"
        or not host
        or parts.netloc != parts.netloc.lower()
    ):
        return "write it as scheme://host[:port] in lower case, without a path"
    local = host == "localhost" or host.endswith(".localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        return "browsers allow WebAuthn only on https (or http://localhost)"
    if host != rp_id and not host.endswith("." + rp_id):
        return f"its host is not {rp_id} nor a subdomain of it"
    return None


# -- audit checkpoint sinks --------------------------------------------------------------

CHECKPOINT_SINK_SCHEMES = ("file", "syslog", "http", "https")
SYSLOG_PORT = 514


@dataclass(frozen=True)
class CheckpointSink:
    """One entry of ``BASTION_AUDIT_CHECKPOINT_SINK``, parsed and checked."""

    url: str
    scheme: str
    path: Path | None = None  # file; syslog's local socket
    host: str | None = None  # syslog over UDP; http(s)
    port: int | None = None
    facility: str = "authpriv"  # syslog

    @property
    def display(self) -> str:
        """The URL without its query, fit for a log line."""
        return self.url.split("?", 1)[0]


def parse_checkpoint_sink(url: str) -> CheckpointSink:
    """Parse one sink URL; ``ValueError`` with a message that says what is accepted."""
    shown = url.split("?", 1)[0]  # a query may carry a token: never echo it
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{shown!r} is not a URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in CHECKPOINT_SINK_SCHEMES:
        raise ValueError(
            f"{shown!r}: use file:///abs/path.jsonl, syslog://host:514, syslog:///dev/log, "
            "http(s)://host/path"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{scheme} sink: no credentials in the URL; put an HTTP sink's in "
            "BASTION_AUDIT_CHECKPOINT_HTTP_AUTHORIZATION"
        )
    if parts.fragment:
        raise ValueError(f"{scheme} sink: a URL fragment (#…) means nothing here")
    path = Path(unquote(parts.path)) if parts.path else None
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or path is None or not path.is_absolute():
            raise ValueError(
                f"{shown!r}: a file sink needs an absolute path, file:///var/log/x.jsonl"
            )
        return CheckpointSink(url, scheme, path=path)
    if scheme == "syslog":
        facility = parse_qs(parts.query).get("facility", ["authpriv"])[-1]
        if facility not in SysLogHandler.facility_names:
            raise ValueError(f"{shown!r}: unknown syslog facility {facility!r}")
        if parts.hostname:
            return CheckpointSink(
                url, scheme, host=parts.hostname, port=port or SYSLOG_PORT, facility=facility
            )
        if path is None or not path.is_absolute():
            raise ValueError(f"{shown!r}: syslog://host:514 or syslog:///dev/log")
        return CheckpointSink(url, scheme, path=path, facility=facility)
    if not parts.hostname:
        raise ValueError(f"{shown!r}: an HTTP sink needs a host")
    return CheckpointSink(url, scheme, host=parts.hostname, port=port)


def _outside_data(path: Path, data_dir: Path, database_url: str | None) -> None:
    """A file sink inside the data folder (or the SQLite database's folder) anchors nothing:
    whoever can rewrite the database can rewrite it too."""
    target = path.expanduser().resolve()
    folders = [Path(data_dir).expanduser().resolve()]
    if database_url and database_url.startswith("sqlite:///"):
        folders.append(Path(database_url.removeprefix("sqlite:///")).expanduser().resolve().parent)
    for folder in folders:
        if target.is_relative_to(folder):
            raise ValueError(
                f"the file sink {path} is inside {folder}, beside the data it vouches for: "
                "choose a path outside the data folder (e.g. /var/log/bastion-checkpoints.jsonl)"
            )


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the file named by ``BASTION_CONFIG`` (keys without the prefix)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("BASTION_CONFIG")
        if not path:
            return {}
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read BASTION_CONFIG file {path}: {exc.strerror}"
            ) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(
                f"BASTION_CONFIG file {path} is not valid TOML: {exc}"
            ) from exc
        section = data.get("bastion", data)
        if not isinstance(section, dict):
            raise ConfigurationError(f"BASTION_CONFIG file {path}: [bastion] must be a table")
        return section


def _url_host(host: str) -> str:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a name
    if address.is_loopback:
        return "localhost"
    return f"[{host}]" if address.version == 6 else host


def _unknown_variables(environ: dict[str, str]) -> list[str]:
    """``BASTION_*`` variables that name no setting, each with the nearest setting."""
    known = {f"BASTION_{name.upper()}" for name in Settings.model_fields} | NOT_SETTINGS
    lines = []
    for name in sorted(key for key in environ if key.upper().startswith("BASTION_")):
        if name.upper() in known:
            continue
        near = difflib.get_close_matches(name.upper(), sorted(known), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        lines.append(f"  {name}: not a Bastion setting{hint}")
    return lines


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation failures into one readable ConfigurationError."""
    unknown = _unknown_variables(dict(os.environ))
    if unknown:
        raise ConfigurationError(
            "unknown environment variables (the settings are listed in "
            "docs/configuration.md):\n" + "\n".join(unknown)
        )
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            lines.append(f"  BASTION_{name.upper()}: {error['msg']}")
        raise ConfigurationError("invalid configuration:\n" + "\n".join(lines)) from None
