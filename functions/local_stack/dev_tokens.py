"""Local development JWTs: RS256 like the tokens an identity provider signs for API Gateway's
JWT authorizer, with a signing key kept in .local/ (git-ignored, created on first use) so tokens
minted from the command line work against a running `make dev`.

    python -m functions.local_stack.dev_tokens --org org_acme --role admin
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.support.template import REPO_ROOT

KEY_PATH = REPO_ROOT / ".local" / "dev-signing-key.pem"
LOCAL_ISSUER = "http://localhost:3000/dev-issuer"
LOCAL_AUDIENCE = "billing-local"
TOKEN_LIFETIME_SECONDS = 12 * 3600


class TokenError(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_signing_key(path: Path = KEY_PATH) -> rsa.RSAPrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        path.write_bytes(pem)
        path.chmod(0o600)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TokenError(f"{path} is not an RSA key")
    return loaded


def key_id(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return _b64(digest.finalize())[:16]


def mint(key: rsa.RSAPrivateKey, claims: dict[str, Any], *, lifetime: int = TOKEN_LIFETIME_SECONDS) -> str:
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT", "kid": key_id(key.public_key())}
    payload = {"iss": LOCAL_ISSUER, "aud": LOCAL_AUDIENCE, "iat": now, "nbf": now, "exp": now + lifetime, "jti": uuid.uuid4().hex}
    payload.update(claims)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def mint_for(key: rsa.RSAPrivateKey, org_id: str, role: str, subject: str | None = None) -> str:
    return mint(
        key, {"sub": subject or f"user_{role}_{org_id}", "org_id": org_id, "org_role": role, "email": f"{role}@{org_id}.example"}
    )


@dataclass(frozen=True)
class Verifier:
    """Checks a bearer token as API Gateway's JWT authorizer does: RS256 signature with a known
    key, issuer, audience (aud or client_id), exp and nbf."""

    public_key: rsa.RSAPublicKey
    issuer: str
    audiences: tuple[str, ...]
    leeway: int = 0

    def verify(self, token: str, now: float | None = None) -> dict[str, Any]:
        try:
            header_b64, payload_b64, signature_b64 = token.split(".")
            header = json.loads(_unb64(header_b64))
            payload = json.loads(_unb64(payload_b64))
            signature = _unb64(signature_b64)
        except ValueError:
            raise TokenError("malformed token") from None
        if not isinstance(header, dict) or not isinstance(payload, dict) or header.get("alg") != "RS256":
            raise TokenError("unsupported token")
        if header.get("kid") not in (None, key_id(self.public_key)):
            raise TokenError("unknown signing key")
        try:
            self.public_key.verify(signature, f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise TokenError("bad signature") from None
        current = time.time() if now is None else now
        if payload.get("iss") != self.issuer:
            raise TokenError("wrong issuer")
        audiences = payload.get("aud", payload.get("client_id"))
        audience_list = audiences if isinstance(audiences, list) else [audiences]
        if not set(map(str, audience_list)) & set(self.audiences):
            raise TokenError("wrong audience")
        if not isinstance(payload.get("exp"), int | float) or payload["exp"] + self.leeway < current:
            raise TokenError("expired")
        if isinstance(payload.get("nbf"), int | float) and payload["nbf"] - self.leeway > current:
            raise TokenError("not yet valid")
        return payload


def gateway_claims(payload: dict[str, Any]) -> dict[str, str]:
    """Claims as HTTP API hands them to Lambda: every value a string, lists as "[a b]"."""

    def render(value: Any) -> str:
        if isinstance(value, list):
            return "[" + " ".join(render(item) for item in value) + "]"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict):
            return json.dumps(value, separators=(",", ":"))
        return str(value)

    return {name: render(value) for name, value in payload.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Mint a development token for `make dev`.")
    parser.add_argument("--org", default="org_demo", help="organization id (the org_id claim)")
    parser.add_argument("--role", default="admin", help="role in the organization (the org_role claim)")
    args = parser.parse_args()
    print(mint_for(load_signing_key(), args.org, args.role))


if __name__ == "__main__":
    main()
