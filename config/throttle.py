"""Login throttling with django-axes (issue: safe to put on a network).

After LOGIN_FAILURE_LIMIT wrong passwords for one username from one address, that pair is
locked out for LOGIN_LOCKOUT_MINUTES: the login page answers 429 without checking the password.
Keying on the pair means a stranger cannot lock a colleague out from another address.

Behind a reverse proxy every request comes from the proxy's address; TRUSTED_PROXY_COUNT says
how many proxies append to X-Forwarded-For, and the client is the entry that many places from
its right end (entries further left are whatever the client chose to send).
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        forwarded = [part.strip() for part in
                     request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count:
            return forwarded[-count]
    return request.META.get("REMOTE_ADDR", "")
