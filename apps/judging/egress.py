"""Where judge calls may go, which key goes with them, and what of a key may come back.

The operator decides, not the project (issue: safe to put on a network):

1. A run may name its own `api_base` (vLLM, Ollama, a proxy). The operator lists trusted
   prefixes in ALLOWED_API_BASES. A listed base gets RUBRICLAB_API_KEY; any other base gets no
   key at all (a placeholder), so no key ever leaves for a URL a project member typed.
2. An unlisted base is refused when its host is, or resolves to, a loopback, link-local,
   unspecified, multicast or reserved address, or a cloud metadata service (169.254.169.254 and
   friends): the workers must not become a way into the machine they run on. With
   ALLOW_UNLISTED_API_BASES=false every unlisted base is refused.
3. The same check runs when a run starts (planning.settings_errors: a field error) and before
   each call on the workers (provider.ProviderClient.complete: a permanent error that stops the
   run), because a name can resolve differently by then. Resolutions are cached for 30 s per
   process. What is left: a DNS answer that changes between our look-up and the HTTP client's
   own (rebinding inside those seconds); an operator who fears it lists bases and sets
   ALLOW_UNLISTED_API_BASES=false.
4. `redact` removes secrets from any text we store or show (provider error bodies, model
   output): every secret-looking environment value, in any letter case, without a known
   prefix (`sk-`, `sk-proj-`, ...), base64-encoded, and any 12+ character piece of it.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
import socket
import time
from functools import lru_cache
from urllib.parse import urlsplit

from django.conf import settings

NO_KEY = "no-key-needed"  # such servers often need no key, but the client insists on one
_METADATA_HOSTS = {"metadata.google.internal", "metadata", "metadata.goog",
                   "instance-data", "instance-data.ec2.internal"}
_METADATA_IPS = {ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "169.254.169.253", "100.100.100.200",
    "fd00:ec2::254", "fd00:ec2::23")}
_RESOLVE_TTL_S = 30.0
_resolved: dict[str, tuple[float, list[ipaddress._BaseAddress] | None]] = {}


# -- api_base policy -------------------------------------------------------------------------

def _matches_prefix(url: str, prefix: str) -> bool:
    """`url` starts with `prefix` at a boundary: "http://gpu:8000" must not let in
    "http://gpu:8000.evil.example" or "http://gpu:80001"."""
    if not url.lower().startswith(prefix.lower()):
        return False
    if prefix.endswith(("/", ":")) or len(url) == len(prefix):
        return True
    return url[len(prefix)] in "/?#"


def is_listed(api_base: str) -> bool:
    return any(_matches_prefix(api_base, p) for p in settings.ALLOWED_API_BASES)


def _addresses(host: str) -> list[ipaddress._BaseAddress] | None:
    """The host's addresses (cached briefly), or None when it does not resolve."""
    now = time.monotonic()
    cached = _resolved.get(host)
    if cached and now - cached[0] < _RESOLVE_TTL_S:
        return cached[1]
    try:
        found = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError, OSError):
            found = None
        else:
            found = [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
    _resolved[host] = (now, found)
    return found


def _forbidden_kind(address: ipaddress._BaseAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in _METADATA_IPS:
        return "a cloud metadata service"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_multicast or address.is_reserved:
        return "a reserved address"
    return None


def api_base_error(api_base: str) -> str | None:
    """Why a run may not send calls to `api_base`, or None. The message is for the user."""
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "An http:// or https:// URL, e.g. http://gpu-box:8000/v1."
    if parts.username or parts.password:
        return "Put no user name or password in the URL (the key comes from RUBRICLAB_API_KEY)."
    if is_listed(api_base):
        return None
    if not settings.ALLOW_UNLISTED_API_BASES:
        return ("This server only sends judge calls to the bases its operator listed "
                "(ALLOWED_API_BASES).")
    host = parts.hostname.lower().rstrip(".")
    if host in _METADATA_HOSTS or host == "localhost" or host.endswith(".localhost"):
        kind = "a cloud metadata service" if host in _METADATA_HOSTS else "a loopback address"
        return _refusal(kind)
    for address in _addresses(host) or []:
        kind = _forbidden_kind(address)
        if kind:
            return _refusal(kind)
    return None


def _refusal(kind: str) -> str:
    return (f"This address is {kind}; judge calls go there only if the operator lists it "
            "in ALLOWED_API_BASES.")


def key_for(api_base: str) -> str:
    """The key sent with a call to a run's own api_base: RUBRICLAB_API_KEY for a listed base,
    a placeholder for any other."""
    if is_listed(api_base):
        return os.environ.get("RUBRICLAB_API_KEY") or NO_KEY
    return NO_KEY


# -- redaction -------------------------------------------------------------------------------

_SECRET_NAME_RE = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$")
_KEY_PREFIXES = ("sk-proj-", "sk-ant-api03-", "sk-ant-", "sk-or-v1-", "sk-", "rl_", "xai-",
                 "gsk_", "hf_", "pplx-")
WINDOW = 12
_GENERIC_RE = re.compile(r"\b(sk|rl)[-_][A-Za-z0-9_\-]{12,}")


def _secrets_from_env() -> tuple[str, ...]:
    return tuple(sorted(
        value for name, value in os.environ.items()
        if value and len(value) >= 8 and _SECRET_NAME_RE.search(name.upper())
    ))


def _forms(secret: str) -> set[str]:
    """The texts a provider may echo for one secret: itself, without its prefix, and base64 of
    it at each of the three byte alignments (what survives inside a longer base64 string)."""
    forms = {secret}
    for prefix in _KEY_PREFIXES:
        if secret.lower().startswith(prefix) and len(secret) - len(prefix) >= 8:
            forms.add(secret[len(prefix):])
    raw = secret.encode("utf-8", "surrogatepass")
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw).decode("ascii")
            # Characters that mix the padding bytes or the end of the secret with its
            # neighbours differ by context: keep only the stable middle.
            start = (shift * 4 + 2) // 3
            stable = encoded[start: (len(raw) + shift) // 3 * 4]
            if len(stable) >= WINDOW:
                forms.add(stable)
    return forms


@lru_cache(maxsize=8)
def _index(secrets: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    """Every 12-character window of every form, lower-cased; and the short secrets (under 12
    characters), matched whole."""
    windows: set[str] = set()
    short: list[str] = []
    for secret in secrets:
        for form in _forms(secret):
            lowered = form.lower()
            if len(lowered) < WINDOW:
                short.append(lowered)
                continue
            windows.update(lowered[i: i + WINDOW] for i in range(len(lowered) - WINDOW + 1))
    return frozenset(windows), tuple(short)


def redact(text: str, secrets: tuple[str, ...] | None = None) -> str:
    """`text` with every piece of a secret (12+ characters of any form, any case) replaced by
    "***", and sk-/rl- style keys of unknown origin shortened to their prefix."""
    if not text:
        return text
    windows, short = _index(_secrets_from_env() if secrets is None else secrets)
    lowered = text.lower()
    hits: list[tuple[int, int]] = []
    if windows and len(text) >= WINDOW:
        i, end = 0, len(lowered) - WINDOW + 1
        while i < end:
            if lowered[i: i + WINDOW] in windows:
                start = i
                while i < end and lowered[i: i + WINDOW] in windows:
                    i += 1
                hits.append((start, i + WINDOW - 1))
            else:
                i += 1
    for secret in short:
        for match in re.finditer(re.escape(secret), lowered):
            hits.append(match.span())
    if hits:
        hits.sort()
        out, last = [], 0
        for start, stop in hits:
            if stop <= last:
                continue
            out.append(text[last: max(start, last)])
            out.append("***")
            last = stop
        out.append(text[last:])
        text = "".join(out)
    return _GENERIC_RE.sub(lambda m: m.group(1) + "-***", text)
