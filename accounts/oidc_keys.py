"""The key that signs the ID tokens of the site's OpenID Connect provider. Read by
config/settings.py, so it imports nothing from Django."""

from pathlib import Path


def development_key(path: Path) -> str:
    """An RSA key for development, made once and kept at path (under VAR_DIR) so
    tokens stay valid across restarts. Never used over HTTPS: settings refuse to
    start without OIDC_PRIVATE_KEY there."""
    if path.exists():
        return path.read_text()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{id(key)}.tmp")
    partial.write_text(pem)
    partial.chmod(0o600)
    try:
        # Another process may have made one meanwhile: the first one in place wins.
        path.hardlink_to(partial)
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return path.read_text()


def published_keys(signing: str, previous: str = "") -> list[dict]:
    """IDP_OIDC_PRIVATE_KEYS: the signing key first (accounts.oidc_provider signs with
    the first), then the key it replaced, still published so that tokens it signed
    verify until the rotation is over."""
    keys = [{"pem": signing}]
    if previous.strip() and previous.strip() != signing.strip():
        keys.append({"pem": previous})
    return keys
