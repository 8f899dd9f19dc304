"""API keys of remote servers: kept in the system keyring, never in settings files.

The Settings dialog saves a key per server URL. Where no keyring exists (a headless
server, a CI job) the key can be given for one process in QWENLONG_READER_API_KEY; it
wins over a saved one because it is the more explicit of the two. OPENAI_API_KEY is not
read: a key set for another tool must not be sent to a team's server by surprise."""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.parse

from app.errors import BackendError
from app.llm.remote_errors import normalize_url

log = logging.getLogger("app.llm")

KEYRING_SERVICE = "QwenLongReader"
API_KEY_ENV = "QWENLONG_READER_API_KEY"


def api_key_for(url: str) -> str | None:
    """The key to send to this server: QWENLONG_READER_API_KEY, else the saved one."""
    return os.environ.get(API_KEY_ENV, "").strip() or api_key_from_keyring(url)


def api_key_from_keyring(url: str) -> str | None:
    """The API key stored for this server, or None (also when no keyring is available)."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    try:
        return keyring.get_password(KEYRING_SERVICE, normalize_url(url)) or None
    except NoKeyringError:  # a headless machine: expected, QWENLONG_READER_API_KEY serves
        log.info("no keyring on this machine: no saved API key (%s may give one)", API_KEY_ENV)
        return None
    except (KeyringError, RuntimeError) as error:
        log.warning("could not read the API key from the keyring: %s", error)
        return None


def store_api_key(url: str, key: str) -> None:
    """Save the key for this server in the system keyring; an empty key deletes it."""
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    account = normalize_url(url)
    try:
        if key:
            keyring.set_password(KEYRING_SERVICE, account, key)
        else:
            with contextlib.suppress(PasswordDeleteError):  # nothing stored: fine
                keyring.delete_password(KEYRING_SERVICE, account)
    except (KeyringError, RuntimeError) as error:
        raise BackendError(
            f"The API key could not be saved in the system keyring: {error}",
            hint="Install or unlock a keyring (GNOME Keyring, KWallet, macOS Keychain, "
            "Windows Credential Manager).",
        ) from None


# A password written into a server URL (http://user:password@host) is kept like an API
# key: the settings and the Settings dialog keep the URL with its user only.
_URL_PASSWORD = "basic-auth:"


def split_url_password(url: str) -> tuple[str, str]:
    """(the URL with its user but without its password, the password or "")."""
    try:
        parts = urllib.parse.urlsplit(url)
        password = parts.password
    except ValueError:
        return url, ""
    if not password:
        return url, ""
    userinfo, _, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    kept = urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}"))
    return kept, urllib.parse.unquote(password)


def store_url_password(url: str, password: str) -> None:
    """Save the password of ``url``'s user (``url`` without it) in the system keyring."""
    store_api_key(_URL_PASSWORD + url, password)


def url_password_for(url: str) -> str | None:
    """The saved password of ``url``'s user, or None."""
    return api_key_from_keyring(_URL_PASSWORD + url)
