"""Login throttling (django-axes, config/throttle.py): after LOGIN_FAILURE_LIMIT wrong passwords
for one username from one address the pair is locked out (429, the password is not even
checked); other addresses and other usernames are not."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def attempt(password: str, *, username: str = "owner", ip: str = "203.0.113.7", **meta):
    return Client(REMOTE_ADDR=ip, **meta).post(
        reverse("login"), {"username": username, "password": password})


def test_wrong_passwords_lock_the_pair_out(personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt("wrong").status_code == 200  # the form again, with its error
    locked = attempt("wrong")
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    assert attempt("pw").status_code == 429  # even the right password, while locked


def test_the_lockout_is_for_that_username_from_that_address(personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt("wrong")
    assert attempt("pw", ip="198.51.100.9").status_code == 302  # the owner, elsewhere
    assert attempt("pw", username="editor").status_code == 302  # a colleague, same office


def test_a_right_password_before_the_limit_resets_the_count(personas, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        attempt("wrong")
    assert attempt("pw").status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt("wrong").status_code == 200


def test_behind_a_proxy_the_forwarded_address_counts(personas, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt("wrong", ip="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7")
    assert attempt("pw", ip="10.0.0.2",
                   HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 429
    # A client that forges an extra entry on the left changes nothing.
    assert attempt("pw", ip="10.0.0.2",
                   HTTP_X_FORWARDED_FOR="9.9.9.9, 203.0.113.7").status_code == 429
    assert attempt("pw", ip="10.0.0.2",
                   HTTP_X_FORWARDED_FOR="198.51.100.9").status_code == 302
