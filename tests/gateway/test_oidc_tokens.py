"""The OIDC login's id_token checks, with real keys and signatures: a token is taken only when the
provider's published key signed it (public-key algorithms only), for this issuer, this client and this
login's nonce, and not expired. Every tampered or stale token is refused with a reason, no login."""
from __future__ import annotations

import base64
import json
import time

import pytest
from conftest import run_async
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from hebi_common.config import HebiConfig
from hebi_gateway.auth import LoginRefused
from hebi_gateway.auth.oidc import OidcAuthenticator
from hebi_gateway.logins import LoginStore

ISSUER, CLIENT, NONCE = "http://127.0.0.1:9/", "hebi-web", "the-nonce-of-this-login"
KEY = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})
ROTATED = RSAKey.generate_key(2048, parameters={"kid": "k2", "alg": "RS256", "use": "sig"})
IMPOSTOR = RSAKey.generate_key(2048, parameters={"kid": "k1", "alg": "RS256", "use": "sig"})


def claims(**changes) -> dict:
    now = int(time.time())
    return {"iss": ISSUER.rstrip("/"), "aud": CLIENT, "sub": "alice", "nonce": NONCE, "iat": now, "exp": now + 300,
            "preferred_username": "alice", **changes}


def sign(payload: dict, key=KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid}, payload, key, algorithms=[alg])


def check(tmp_path, token: str, *published: tuple) -> dict:
    """Validate ``token``; the provider publishes the key sets ``published`` one after another (default: KEY)."""
    published = list(published or [(KEY,)])
    config = HebiConfig.model_validate({"gateway": {"auth": {"method": "oidc", "oidc": {
        "issuer": ISSUER, "client_id": CLIENT, "leeway": 30}}}})
    auth = OidcAuthenticator(config, LoginStore(tmp_path / "logins.json", 3600))
    fetched: list[str] = []

    async def provider(url: str, **kwargs) -> dict:
        fetched.append(url)
        if url.endswith("/.well-known/openid-configuration"):
            return {"issuer": ISSUER.rstrip("/"), "authorization_endpoint": "x", "token_endpoint": "x", "jwks_uri": "jwks"}
        keys = published.pop(0) if len(published) > 1 else published[0]
        return {"keys": [k.as_dict(private=False) for k in keys]}
    auth._get_json = provider
    found: list[dict] = []

    async def main():
        found.append(await auth.validate_id_token(token, NONCE))
    run_async(main)
    return found[0]


def test_a_good_token_gives_its_claims(tmp_path):
    assert check(tmp_path, sign(claims()))["sub"] == "alice"


def test_rotated_keys_are_fetched_again_once(tmp_path):
    # The key set read first lacks k2: a token signed with k2 makes the gateway read the keys again.
    token = sign(claims(), ROTATED)
    assert check(tmp_path, token, (KEY,), (KEY, ROTATED))["sub"] == "alice"
    with pytest.raises(LoginRefused, match="a key it does not publish"):
        check(tmp_path, token, (KEY,), (KEY,))


def _tampered_payload() -> str:
    head, body, signature = sign(claims()).split(".")
    data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    data["preferred_username"] = "root"
    body = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{head}.{body}.{signature}"


def _unsigned() -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"none","kid":"k1"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    return f"{head}.{body}."


def _hmac_with_the_public_key() -> str:
    # The classic algorithm confusion: HS256 "signed" with the provider's public key as the secret.
    public = OctKey.import_key(json.dumps(KEY.as_dict(private=False)).encode(), {"kid": "k1"})
    return jwt.encode({"alg": "HS256", "kid": "k1"}, claims(), public, algorithms=["HS256"])


@pytest.mark.parametrize("make, reason", [
    (lambda: sign(claims(), IMPOSTOR), "does not verify"),
    (_tampered_payload, "does not verify"),
    (_unsigned, "does not verify"),
    (_hmac_with_the_public_key, "does not verify"),
    (lambda: sign(claims(iss="http://127.0.0.1:10")), "not valid"),
    (lambda: sign(claims(aud="another-client")), "not valid"),
    (lambda: sign(claims(aud=[CLIENT, "another-client"])), "issued to another client"),
    (lambda: sign(claims(nonce="a-nonce-of-another-login")), "not valid"),
    (lambda: sign({k: v for k, v in claims().items() if k != "nonce"}), "not valid"),
    (lambda: sign(claims(exp=int(time.time()) - 120)), "not valid"),
    (lambda: sign({k: v for k, v in claims().items() if k != "exp"}), "not valid"),
], ids=["other-key", "edited-claims", "alg-none", "hs256-confusion", "issuer", "audience", "azp", "nonce",
        "no-nonce", "expired", "no-expiry"])
def test_a_tampered_or_expired_token_is_refused(tmp_path, make, reason):
    with pytest.raises(LoginRefused, match=reason):
        check(tmp_path, make())
