"""Invitations (apps/projects/invitations.py): with sign-up closed, an owner invites an e-mail
with a role; the single-use, expiring link sets a password and lands the person in the project;
a labeller who signs in lands on their assigned sessions with counts."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.projects.invitations import invitation_accept, invitation_create
from apps.projects.models import Invitation, Membership, Role
from tests.labeling.helpers import label_one, make_session

pytestmark = pytest.mark.django_db
STRONG = "correct-horse-battery-staple-42"


def invite(personas, email="kim@example.org", role="labeller"):
    return personas.client("owner").post(reverse("member_invite", args=["acme"]),
                                         {"email": email, "role": role})


def link_in(response) -> str:
    return re.search(r'value="(http://testserver/accounts/invitation/[^"]+)"',
                     response.content.decode()).group(1)


def test_an_owner_invites_and_sees_the_link_that_the_mail_carries(personas):
    response = invite(personas)
    assert response.status_code == 200
    link = link_in(response)
    assert response["Cache-Control"].startswith("max-age=0")
    [message] = mail.outbox
    assert message.to == ["kim@example.org"] and link in message.body
    assert "Acme" in message.subject
    invitation = Invitation.objects.get()
    assert link.rsplit("/", 2)[-2] not in invitation.token_hash  # only the hash is stored
    page = personas.client("owner").get(reverse("member_list", args=["acme"])).content.decode()
    assert "kim@example.org" in page and link not in page  # listed, the link shown once


def test_the_link_sets_a_password_and_lands_in_the_project(personas):
    link = link_in(invite(personas, role="editor"))
    client = Client()
    page = client.get(link)
    assert page.status_code == 200 and "Join Acme" in page.content.decode()
    response = client.post(link, {"username": "kim", "password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    assert response["Location"] == reverse("project_home", args=["acme"])
    kim = get_user_model().objects.get(username="kim")
    assert kim.email == "kim@example.org"
    assert Membership.objects.get(project=personas.project, user=kim).role == Role.EDITOR
    assert client.get(reverse("project_home", args=["acme"])).status_code == 200  # signed in
    assert Client().post(reverse("login"), {"username": "kim", "password": STRONG}) \
        .status_code == 302


def test_the_link_works_once(personas):
    link = link_in(invite(personas))
    Client().post(link, {"username": "kim", "password1": STRONG, "password2": STRONG})
    again = Client().post(link, {"username": "kim2", "password1": STRONG, "password2": STRONG})
    assert again.status_code == 404
    assert Client().get(link).status_code == 404
    assert not get_user_model().objects.filter(username="kim2").exists()


def test_an_expired_link_is_refused(personas):
    link = link_in(invite(personas))
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get(link)
    assert response.status_code == 404
    assert "used, expired or revoked" in response.content.decode()
    assert Client().get("/accounts/invitation/not-a-token/").status_code == 404


def test_a_weak_password_or_a_taken_username_is_a_field_error(personas):
    link = link_in(invite(personas))
    weak = Client().post(link, {"username": "kim", "password1": "123", "password2": "123"})
    assert weak.status_code == 422 and "too short" in weak.content.decode()
    taken = Client().post(link, {"username": "editor", "password1": STRONG,
                                 "password2": STRONG})
    assert taken.status_code == 422
    assert not Invitation.objects.get().accepted_at


def test_someone_signed_in_joins_with_their_account(personas):
    link = link_in(invite(personas, email="outsider@example.org", role="editor"))
    client = personas.client("outsider")
    assert "Join as outsider" in client.get(link).content.decode()
    response = client.post(link)
    assert response["Location"] == reverse("project_home", args=["acme"])
    assert Membership.objects.get(project=personas.project, user=personas.outsider).role == "editor"


def test_revoked_invitations_stop_working(personas):
    link = link_in(invite(personas))
    invitation = Invitation.objects.get()
    response = personas.client("owner").post(
        reverse("member_invitation_revoke", args=["acme", invitation.pk]))
    assert response.status_code == 302
    assert Client().get(link).status_code == 404


def test_only_owners_invite(personas):
    for who, status in (("editor", 403), ("labeller", 403), ("outsider", 404)):
        response = personas.client(who).post(reverse("member_invite", args=["acme"]),
                                              {"email": "x@example.org", "role": "owner"})
        assert response.status_code == status, who
    assert not Invitation.objects.exists() and not mail.outbox


def test_bad_invitations_are_field_errors(personas):
    assert invite(personas, email="not-an-address").status_code == 422
    assert invite(personas, email="owner@example.org").status_code == 422  # a member already
    assert invite(personas, role="king").status_code == 422
    assert not Invitation.objects.exists()


def test_two_accepts_at_once_leave_one_account(personas):
    _, raw = invitation_create(project=personas.project, email="k@example.org",
                               role=Role.LABELLER, invited_by=personas.owner)
    invitation_accept(raw=raw, username="first", password=STRONG)
    with pytest.raises(Exception, match="used, expired or revoked"):
        invitation_accept(raw=raw, username="second", password=STRONG)
    assert not get_user_model().objects.filter(username="second").exists()


def test_a_labeller_lands_on_their_sessions_with_counts(personas):
    session = make_session(personas.project, assignees=[personas.labeller], items=5)
    label_one(session, personas.labeller, {"correct": 2, "safe": 1})
    label_one(session, personas.labeller, {"correct": 3, "safe": 0})
    client = Client()
    response = client.post(reverse("login"), {"username": "labeller", "password": "pw"},
                           follow=True)
    page = response.content.decode()
    assert "Your labelling work" in page
    assert reverse("label_screen", args=["acme", session.pk]) in page
    row = re.search(r"<tr>\s*<td><a href=\"/p/acme/labelling/.*?</tr>", page, re.S).group(0)
    assert re.findall(r"<td>(\d+)</td>", row) == ["5", "2", "0"]
    assert reverse("project_create") not in page  # not "create a project"
