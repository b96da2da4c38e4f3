"""Encryption of secrets at rest (provider admin keys, Stripe keys, webhook secrets).

Fernet (AES-128-CBC + HMAC-SHA256) with a key from ``METRON_ENCRYPTION_KEY``;
development derives one from ``SECRET_KEY`` so nothing needs setting up.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

__all__ = ["InvalidToken", "decrypt", "encrypt"]


def _fernet() -> Fernet:
    key = settings.METRON_ENCRYPTION_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest())
    return Fernet(key)


def encrypt(plaintext: str) -> str:
    """Encrypt a secret for storage; returns ASCII text."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a stored secret; raises InvalidToken if the key changed or it was tampered with."""
    return _fernet().decrypt(token.encode()).decode()
