"""A software WebAuthn authenticator and browser, for tests.

It answers ``PublicKeyCredentialCreationOptionsJSON`` / ``…RequestOptionsJSON`` with the
``RegistrationResponseJSON`` / ``AuthenticationResponseJSON`` a browser would post: real
CBOR (cbor2) attestation objects, authenticator data with the flags, AAGUID and sign
counter the test chooses, real signatures (``cryptography``: ES256 and Ed25519), resident
credentials with user handles, and ``packed`` attestation either self-signed or with an
x5c chain from a :class:`TestCA`. Nothing here is used by Bastion itself.

Every call takes keyword overrides (``origin``, ``rp_id``, ``up``, ``uv``, ``be``, ``bs``,
``sign_count``, ``ceremony``, ``challenge``…) so a negative test changes exactly one thing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID, ObjectIdentifier

Alg = Literal["ES256", "EdDSA"]
Attestation = Literal["none", "packed-self", "packed"]

COSE_ALG = {"ES256": -7, "EdDSA": -8}
UP, UV, BE, BS, AT, ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80
AAGUID_OID = ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")
ZERO_AAGUID = UUID(int=0)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- keys ---------------------------------------------------------------------------------------


@dataclass
class KeyPair:
    alg: Alg
    private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

    @classmethod
    def generate(cls, alg: Alg) -> KeyPair:
        if alg == "ES256":
            return cls(alg, ec.generate_private_key(ec.SECP256R1()))
        return cls(alg, ed25519.Ed25519PrivateKey.generate())

    def cose(self) -> bytes:
        """The COSE_Key (RFC 9053) of the public key, as authenticators encode it."""
        public = self.private.public_key()
        if isinstance(public, ec.EllipticCurvePublicKey):
            numbers = public.public_numbers()
            return cbor2.dumps(
                {
                    1: 2,  # kty: EC2
                    3: -7,  # alg: ES256
                    -1: 1,  # crv: P-256
                    -2: numbers.x.to_bytes(32, "big"),
                    -3: numbers.y.to_bytes(32, "big"),
                }
            )
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cbor2.dumps({1: 1, 3: -8, -1: 6, -2: raw})  # OKP, EdDSA, Ed25519

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            return self.private.sign(data, ec.ECDSA(hashes.SHA256()))  # DER, as WebAuthn wants
        return self.private.sign(data)


# --- a test certificate authority for "packed" attestation ---------------------------------------


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bastion Test Keys"),
    ]
    if unit:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


@dataclass
class TestCA:
    """A root and an intermediate CA issuing attestation certificates (§8.2.1 profile)."""

    __test__ = False  # not a pytest class

    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate

    @classmethod
    def create(
        cls,
        name: str = "Bastion Test Attestation Root",
        *,
        not_before: datetime | None = None,
        lifetime: timedelta = timedelta(days=3650),
    ) -> TestCA:
        start = not_before or datetime(2020, 1, 1, tzinfo=UTC)
        root_key = ec.generate_private_key(ec.SECP256R1())
        root = cls._certificate(
            subject=_name(name),
            issuer=_name(name),
            public_key=root_key.public_key(),
            signer=root_key,
            ca=True,
            start=start,
            end=start + lifetime,
        )
        intermediate_key = ec.generate_private_key(ec.SECP256R1())
        intermediate = cls._certificate(
            subject=_name(name + " Intermediate"),
            issuer=root.subject,
            public_key=intermediate_key.public_key(),
            signer=root_key,
            ca=True,
            start=start,
            end=start + lifetime,
        )
        return cls(root_key, root, intermediate_key, intermediate)

    @staticmethod
    def _certificate(
        *,
        subject: x509.Name,
        issuer: x509.Name,
        public_key: ec.EllipticCurvePublicKey,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
        start: datetime,
        end: datetime,
        aaguid: UUID | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if aaguid is not None:
            # id-fido-gen-ce-aaguid: an OCTET STRING holding the 16 AAGUID bytes.
            builder = builder.add_extension(
                x509.UnrecognizedExtension(AAGUID_OID, b"\x04\x10" + aaguid.bytes),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    def attestation_certificate(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        aaguid: UUID | None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> x509.Certificate:
        return self._certificate(
            subject=_name("Bastion Test Key", unit="Authenticator Attestation"),
            issuer=self.intermediate.subject,
            public_key=key.public_key(),
            signer=self.intermediate_key,
            ca=False,
            start=start or self.intermediate.not_valid_before_utc,
            end=end or self.intermediate.not_valid_after_utc,
            aaguid=aaguid,
        )

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)


# --- the authenticator ----------------------------------------------------------------------


@dataclass
class Credential:
    credential_id: bytes
    key: KeyPair
    rp_id: str
    user_handle: bytes | None  # kept for resident (discoverable) credentials
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    """One authenticator (a security key, or a passkey provider with ``backup_eligible``).

    - ``counter_step``: how much the sign counter grows per use (0: always 0, as synced
      passkeys report).
    - ``attestation``: what it answers to ``attestation: "direct"``; browsers turn it into
      ``none`` when the options ask for ``none`` (``strip_attestation``), as they do.
    """

    alg: Alg = "ES256"
    aaguid: UUID = ZERO_AAGUID
    backup_eligible: bool = False
    backup_state: bool = False
    user_verifying: bool = True
    counter_step: int = 1
    attestation: Attestation = "none"
    ca: TestCA | None = None
    attachment: str = "cross-platform"
    transports: tuple[str, ...] = ("usb",)
    credentials: dict[bytes, Credential] = field(default_factory=dict)
    strip_attestation: bool = True
    attestation_cert_aaguid: UUID | None = None  # override what the certificate names

    # -- navigator.credentials.create() --

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str,
        rp_id: str | None = None,
        ceremony: str = "webauthn.create",
        challenge: str | None = None,
        up: bool = True,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        sign_count: int = 0,
        alg: Alg | None = None,
        attestation: Attestation | None = None,
        cross_origin: bool = False,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        rp_id = rp_id or options["rp"]["id"]
        key = KeyPair.generate(alg or self.alg)
        credential_id = credential_id or secrets.token_bytes(32)
        selection = options.get("authenticatorSelection", {})
        resident = selection.get("residentKey", "discouraged") in ("preferred", "required")
        user_handle = b64url_decode(options["user"]["id"]) if resident else None
        if uv is None:
            uv = self.user_verifying and selection.get("userVerification") != "discouraged"
        client_data = self._client_data(
            ceremony, challenge or options["challenge"], origin, cross_origin
        )
        auth_data = self.authenticator_data(
            rp_id=rp_id,
            up=up,
            uv=uv,
            be=be,
            bs=bs,
            sign_count=sign_count,
            attested=(credential_id, key.cose()),
        )
        fmt = attestation or self.attestation
        if self.strip_attestation and options.get("attestation", "none") == "none":
            fmt = "none"
        attestation_object = cbor2.dumps(
            {
                "fmt": "none" if fmt == "none" else "packed",
                "attStmt": self._statement(fmt, key, auth_data, client_data),
                "authData": auth_data,
            }
        )
        self.credentials[credential_id] = Credential(
            credential_id, key, rp_id, user_handle, sign_count
        )
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "transports": list(self.transports),
            },
            "clientExtensionResults": {"credProps": {"rk": resident}},
        }

    def _statement(
        self, fmt: Attestation, key: KeyPair, auth_data: bytes, client_data: bytes
    ) -> dict[str, Any]:
        signed = auth_data + hashlib.sha256(client_data).digest()
        if fmt == "none":
            return {}
        if fmt == "packed-self":
            return {"alg": COSE_ALG[key.alg], "sig": key.sign(signed)}
        if self.ca is None:
            raise ValueError("packed attestation with a chain needs a TestCA")
        attestation_key = ec.generate_private_key(ec.SECP256R1())
        certificate = self.ca.attestation_certificate(
            attestation_key, aaguid=self.attestation_cert_aaguid or self.aaguid
        )
        return {
            "alg": -7,
            "sig": attestation_key.sign(signed, ec.ECDSA(hashes.SHA256())),
            "x5c": [
                certificate.public_bytes(serialization.Encoding.DER),
                self.ca.intermediate.public_bytes(serialization.Encoding.DER),
            ],
        }

    # -- navigator.credentials.get() --

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str,
        credential_id: bytes | None = None,
        rp_id: str | None = None,
        ceremony: str = "webauthn.get",
        challenge: str | None = None,
        up: bool = True,
        uv: bool | None = None,
        be: bool | None = None,
        bs: bool | None = None,
        sign_count: int | None = None,
        cross_origin: bool = False,
        user_handle: bytes | None = None,
    ) -> dict[str, Any]:
        credential = self._pick(options, credential_id)
        rp_id = rp_id or options.get("rpId") or credential.rp_id
        if sign_count is None:
            credential.sign_count += self.counter_step
            sign_count = credential.sign_count
        if uv is None:
            uv = self.user_verifying and options.get("userVerification") != "discouraged"
        client_data = self._client_data(
            ceremony, challenge or options["challenge"], origin, cross_origin
        )
        auth_data = self.authenticator_data(
            rp_id=rp_id, up=up, uv=uv, be=be, bs=bs, sign_count=sign_count
        )
        signature = credential.key.sign(auth_data + hashlib.sha256(client_data).digest())
        handle = user_handle if user_handle is not None else credential.user_handle
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(handle) if handle is not None else None,
            },
            "clientExtensionResults": {},
        }

    def _pick(self, options: dict[str, Any], credential_id: bytes | None) -> Credential:
        if credential_id is not None:
            return self.credentials[credential_id]
        allowed = [b64url_decode(c["id"]) for c in options.get("allowCredentials", [])]
        if allowed:
            return next(self.credentials[i] for i in allowed if i in self.credentials)
        # A discoverable-credential ceremony: the first resident credential for the RP.
        rp_id = options.get("rpId")
        return next(
            c
            for c in self.credentials.values()
            if c.user_handle is not None and (rp_id is None or c.rp_id == rp_id)
        )

    # -- the byte formats --

    @staticmethod
    def _client_data(ceremony: str, challenge: str, origin: str, cross_origin: bool) -> bytes:
        data = {"type": ceremony, "challenge": challenge, "origin": origin}
        data["crossOrigin"] = cross_origin  # type: ignore[assignment]
        return json.dumps(data, separators=(",", ":")).encode("utf-8")

    def authenticator_data(
        self,
        *,
        rp_id: str,
        up: bool,
        uv: bool,
        be: bool | None,
        bs: bool | None,
        sign_count: int,
        attested: tuple[bytes, bytes] | None = None,
    ) -> bytes:
        """WebAuthn §6.1: rpIdHash | flags | signCount | [attestedCredentialData].

        ``be`` / ``bs`` of ``None`` are this authenticator's own backup flags."""
        be = self.backup_eligible if be is None else be
        bs = self.backup_state if bs is None else bs
        flags = (UP if up else 0) | (UV if uv else 0) | (BE if be else 0) | (BS if bs else 0)
        body = b""
        if attested is not None:
            credential_id, cose_key = attested
            flags |= AT
            body = self.aaguid.bytes + len(credential_id).to_bytes(2, "big")
            body += credential_id + cose_key
        return (
            hashlib.sha256(rp_id.encode("utf-8")).digest()
            + bytes([flags])
            + sign_count.to_bytes(4, "big")
            + body
        )
