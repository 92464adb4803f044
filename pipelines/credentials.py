"""Credentials in URIs: kept out of configs, params, tags, sweep files and console output.

MLflow reads a tracking server's credentials from MLFLOW_TRACKING_USERNAME / _PASSWORD (or
MLFLOW_TRACKING_TOKEN), so a tracking URI never needs to carry them: `split_credentials` moves
them from an http(s) URI into those variables of this process (Ray's local workers inherit
them; cluster workers set their own). A database URI's password cannot be moved there, so it is
refused with the driver's own mechanism named (PGPASSWORD or ~/.pgpass for PostgreSQL,
option files for MySQL). `redact` is the last line of defence for anything printed.
"""
import os
import re
import urllib.parse

from lottery_core.errors import LotteryError

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:\s]*):(?P<secret>[^/@\s]+)@")
HIDDEN = "***"


def redact(text: str) -> str:
    """`text` with the password of every `scheme://user:password@` replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{HIDDEN}@", text)


def has_credentials(uri: str) -> bool:
    parsed = urllib.parse.urlsplit(uri)
    return parsed.username is not None or parsed.password is not None


def without_credentials(uri: str) -> str:
    """The URI with its `user:password@` part removed."""
    parsed = urllib.parse.urlsplit(uri)
    host = parsed.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parsed.port:
        netloc += f":{parsed.port}"
    return urllib.parse.urlunsplit(parsed._replace(netloc=netloc))


def split_credentials(uri: str, origin: str) -> str:
    """A tracking URI safe to record: an http(s) URI's user and password go to
    MLFLOW_TRACKING_USERNAME / _PASSWORD of this process (values already set there win), and
    the URI comes back without them. `origin` names where the URI came from, for errors."""
    if not has_credentials(uri):
        return uri
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme not in ("http", "https"):
        raise LotteryError(f"{origin} {redact(uri)} carries credentials, which would reach params, sweep files "
                           "and logs; drop them from the URI and give them through the database driver's own "
                           "environment (PostgreSQL: PGPASSWORD or ~/.pgpass; MySQL: an option file)")
    os.environ.setdefault("MLFLOW_TRACKING_USERNAME", urllib.parse.unquote(parsed.username or ""))
    if parsed.password is not None:
        os.environ.setdefault("MLFLOW_TRACKING_PASSWORD", urllib.parse.unquote(parsed.password))
    return without_credentials(uri)
