"""Accounts, projects and members as a user meets them in the browser."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from apps.projects.models import ApiToken, Membership, Project, Role
from apps.projects.services import token_create
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}
STRONG = "correct-horse-battery-staple-42"


def _membership(personas, who: str) -> Membership:
    return Membership.objects.get(project=personas.project, user=getattr(personas, who))


# -- sign up, sign in, sign out -----------------------------------------------------------------

@pytest.mark.django_db
def test_sign_up_signs_in_and_leads_to_project_creation(client, settings):
    settings.ALLOW_SIGNUP = True
    settings.PROJECT_CREATORS = "anyone"
    assert client.get(reverse("signup")).status_code == 200
    response = client.post(reverse("signup"), {
        "username": "ada", "email": "ada@example.org",
        "password1": STRONG, "password2": STRONG,
    })
    assert response.status_code == 302
    assert response["Location"] == reverse("project_create")
    assert get_user_model().objects.filter(username="ada", email="ada@example.org").exists()
    assert client.get(reverse("project_list")).status_code == 200  # signed in


@pytest.mark.django_db
def test_sign_up_where_only_owners_create_projects_leads_to_the_project_list(client, settings):
    settings.ALLOW_SIGNUP = True  # PROJECT_CREATORS stays "owners": a new account owns nothing
    response = client.post(reverse("signup"), {
        "username": "bob", "email": "bob@example.org",
        "password1": STRONG, "password2": STRONG,
    }, follow=True)
    assert response.redirect_chain[-1][0] == reverse("project_list")
    assert "invites you" in response.content.decode()
    assert client.get(reverse("project_create")).status_code == 403


@pytest.mark.django_db
def test_sign_up_with_mismatched_passwords_shows_the_error(client, settings):
    settings.ALLOW_SIGNUP = True
    response = client.post(reverse("signup"), {
        "username": "ada", "password1": STRONG, "password2": STRONG + "x",
    })
    assert response.status_code == 422
    assert "password fields didn’t match" in response.content.decode()
    assert not get_user_model().objects.filter(username="ada").exists()


def test_sign_up_refuses_an_e_mail_that_is_taken(client, personas, settings):
    settings.ALLOW_SIGNUP = True
    response = client.post(reverse("signup"), {
        "username": "ada", "email": "OWNER@example.org",
        "password1": STRONG, "password2": STRONG,
    })
    assert response.status_code == 422
    assert "e-mail address exists already" in response.content.decode()


@pytest.mark.django_db
def test_sign_up_is_closed_by_default_and_opens_with_allow_signup(client, settings):
    from config.settings import rubriclab

    assert rubriclab.ALLOW_SIGNUP is False  # the default, with ALLOW_SIGNUP unset
    settings.ALLOW_SIGNUP = False
    assert client.get(reverse("signup")).status_code == 404
    before = get_user_model().objects.count()
    response = client.post(reverse("signup"), {
        "username": "mallory", "password1": STRONG, "password2": STRONG})
    assert response.status_code == 404
    assert get_user_model().objects.count() == before
    assert reverse("signup") not in client.get(reverse("login")).content.decode()
    settings.ALLOW_SIGNUP = True
    assert reverse("signup") in client.get(reverse("login")).content.decode()


def test_sign_in_then_sign_out_with_post(client, personas):
    response = client.post(reverse("login"), {"username": "owner", "password": "pw"})
    assert response.status_code == 302
    assert response["Location"] == reverse("project_list")
    page = client.get(reverse("project_list")).content.decode()
    assert "Acme" in page and "Sign out" in page
    assert client.get(reverse("logout")).status_code == 405  # signing out is a POST
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("project_list")).status_code == 302  # back to the login page


def test_a_wrong_password_is_refused_with_a_message(client, personas):
    response = client.post(reverse("login"), {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()


def test_a_signed_in_user_who_opens_sign_in_goes_to_the_projects(personas):
    response = personas.client("editor").get(reverse("login"))
    assert response.status_code == 302
    assert response["Location"] == reverse("project_list")


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("project_list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# -- projects -----------------------------------------------------------------------------------

def test_project_list_shows_only_ones_own_projects(personas, django_assert_max_num_queries):
    for _ in range(5):
        MembershipFactory(project=ProjectFactory(), user=personas.editor, role=Role.EDITOR)
    client = personas.client("editor")
    with django_assert_max_num_queries(4):
        page = client.get(reverse("project_list")).content.decode()
    assert "Acme" in page and "Other" not in page
    assert page.count(">Editor<") == 6


def test_project_create_makes_the_slug_from_the_name_and_the_creator_owner(personas):
    client = personas.client("outsider")
    response = client.post(reverse("project_create"), {"name": "Cooking QA (v2)"})
    project = Project.objects.get(slug="cooking-qa-v2")
    assert response.status_code == 302
    assert response["Location"] == reverse("project_home", args=["cooking-qa-v2"])
    assert Membership.objects.get(project=project).user == personas.outsider
    assert Membership.objects.get(project=project).role == Role.OWNER


def test_project_create_with_a_taken_slug_shows_the_error_on_the_form(personas):
    client = personas.client("outsider")
    response = client.post(reverse("project_create"), {"name": "ACME"})
    assert response.status_code == 422
    page = response.content.decode()
    assert "The slug &#x27;acme&#x27; is taken" in page
    assert 'name="name"' in page  # the form again, with what was typed
    assert Project.objects.filter(slug="acme").count() == 1


def test_project_create_needs_a_name(personas):
    response = personas.client("outsider").post(reverse("project_create"), {"name": ""})
    assert response.status_code == 422
    assert "This field is required" in response.content.decode()


def test_project_home_works_for_every_member_and_is_404_for_outsiders(personas):
    url = reverse("project_home", args=["acme"])
    for who in ("owner", "editor", "labeller"):
        assert personas.client(who).get(url).status_code == 200, who
    assert personas.client("outsider").get(url).status_code == 404
    assert personas.client("owner").get(reverse("project_home", args=["nope"])).status_code == 404


def test_labeller_sees_the_project_home_but_not_rubrics_or_datasets(personas):
    client = personas.client("labeller")
    home = client.get(reverse("project_home", args=["acme"]))
    assert home.status_code == 200
    assert "You label for this project" in home.content.decode()
    assert reverse("rubric_list", args=["acme"]) not in home.content.decode()
    assert client.get(reverse("rubric_list", args=["acme"])).status_code == 403
    assert client.get(reverse("dataset_list", args=["acme"])).status_code == 403
    assert client.get(reverse("member_list", args=["acme"])).status_code == 403


def test_only_owners_change_project_settings(personas):
    url = reverse("project_settings", args=["acme"])
    data = {"name": "Acme Labs", "description": "", "gate_min_n": 60,
            "gate_min_kappa_lower": 0.5, "gate_min_kappa": 0.7, "gate_min_human_alpha": 0.3,
            "max_queued_calls": 1000}
    assert personas.client("editor").get(url).status_code == 200  # read-only view
    assert personas.client("editor").post(url, data).status_code == 403
    assert personas.client("owner").post(url, data).status_code == 302
    personas.project.refresh_from_db()
    assert (personas.project.name, personas.project.gate_min_n) == ("Acme Labs", 60)
    assert personas.project.gate_min_human_alpha == 0.3


@pytest.mark.parametrize("field", ["gate_min_kappa_lower", "gate_min_kappa",
                                   "gate_min_human_alpha"])
@pytest.mark.parametrize("value", [1.5, -0.1, -1])
def test_settings_refuse_a_gate_threshold_outside_zero_to_one(personas, field, value):
    url = reverse("project_settings", args=["acme"])
    data = {"name": "Acme", "gate_min_n": 50, "gate_min_kappa_lower": 0.4,
            "gate_min_kappa": 0.6, "gate_min_human_alpha": 0.4, "max_queued_calls": 10,
            field: value}
    response = personas.client("owner").post(url, data)
    assert response.status_code == 422
    assert response.context["form"].errors[field]
    personas.project.refresh_from_db()
    assert getattr(personas.project, field) != value


def test_settings_refuse_caps_above_the_operators_ceilings(personas, settings):
    settings.MAX_QUEUED_CALLS_LIMIT = 5000
    settings.MONTHLY_COST_LIMIT_USD = 100.0
    url = reverse("project_settings", args=["acme"])
    data = {"name": "Acme", "gate_min_n": 50, "gate_min_kappa_lower": 0.4,
            "gate_min_kappa": 0.6, "gate_min_human_alpha": 0.4,
            "max_queued_calls": 2_000_000_000, "monthly_cost_limit_usd": "250"}
    response = personas.client("owner").post(url, data)
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert "5,000" in errors["max_queued_calls"][0]
    assert "$100.00" in errors["monthly_cost_limit_usd"][0]
    personas.project.refresh_from_db()
    assert personas.project.max_queued_calls != 2_000_000_000
    response = personas.client("owner").post(
        url, data | {"max_queued_calls": 5000, "monthly_cost_limit_usd": "40"})
    assert response.status_code == 302
    personas.project.refresh_from_db()
    assert (personas.project.max_queued_calls, float(personas.project.monthly_cost_limit_usd)) \
        == (5000, 40.0)


# -- members ------------------------------------------------------------------------------------

def test_members_page_lists_members_for_owner_and_editor(personas):
    url = reverse("member_list", args=["acme"])
    owner_page = personas.client("owner").get(url).content.decode()
    editor_page = personas.client("editor").get(url).content.decode()
    for page in (owner_page, editor_page):
        assert "owner" in page and "editor" in page and "labeller" in page
    assert "Add a member" in owner_page
    assert "Add a member" not in editor_page and "Change role" not in editor_page


def test_owner_adds_a_member_by_username(personas):
    newcomer = UserFactory(username="newcomer")
    response = personas.client("owner").post(
        reverse("member_list", args=["acme"]), {"user": "newcomer", "role": Role.EDITOR}
    )
    assert response.status_code == 302
    assert Membership.objects.get(project=personas.project, user=newcomer).role == Role.EDITOR


def test_owner_adds_a_member_by_e_mail_in_any_case(personas):
    newcomer = UserFactory(username="newcomer", email="new.comer@example.org")
    response = personas.client("owner").post(
        reverse("member_list", args=["acme"]),
        {"user": "New.Comer@Example.org", "role": Role.LABELLER}, **HTMX,
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="member-table"' in page and "newcomer" in page
    assert "<html" not in page
    assert 'id="add-member" hx-swap-oob="true"' in page  # the form comes back empty
    assert Membership.objects.get(project=personas.project, user=newcomer).role == Role.LABELLER


def test_adding_an_unknown_user_shows_an_error_on_the_form(personas):
    response = personas.client("owner").post(
        reverse("member_list", args=["acme"]), {"user": "nobody@example.org", "role": "editor"}
    )
    assert response.status_code == 422
    assert "No user &#x27;nobody@example.org&#x27;" in response.content.decode()


def test_adding_an_unknown_user_by_htmx_puts_the_error_in_the_form_not_the_table(personas):
    response = personas.client("owner").post(
        reverse("member_list", args=["acme"]), {"user": "nobody", "role": "editor"}, **HTMX
    )
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#add-member"
    assert response["HX-Reswap"] == "outerHTML"
    page = response.content.decode()
    assert page.lstrip().startswith('<article id="add-member"')
    assert "No user" in page


def test_adding_someone_who_is_already_a_member_is_an_error(personas):
    response = personas.client("owner").post(
        reverse("member_list", args=["acme"]), {"user": "labeller", "role": "editor"}
    )
    assert response.status_code == 422
    assert "labeller is already a member" in response.content.decode()
    assert _membership(personas, "labeller").role == Role.LABELLER


def test_an_inactive_account_cannot_be_added(personas):
    UserFactory(username="gone", is_active=False)
    response = personas.client("owner").post(
        reverse("member_list", args=["acme"]), {"user": "gone", "role": "editor"}
    )
    assert response.status_code == 422


def test_owner_changes_a_role_with_htmx_and_gets_the_table_back(personas):
    m = _membership(personas, "labeller")
    response = personas.client("owner").post(
        reverse("member_role", args=["acme", m.pk]), {"role": Role.EDITOR}, **HTMX
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="member-table">')
    assert "<html" not in page
    assert "labeller is now editor" in page  # the message rides along out of band
    m.refresh_from_db()
    assert m.role == Role.EDITOR


def test_an_unknown_role_is_refused(personas):
    m = _membership(personas, "labeller")
    response = personas.client("owner").post(
        reverse("member_role", args=["acme", m.pk]), {"role": "admin"}, **HTMX
    )
    assert response.status_code == 422
    m.refresh_from_db()
    assert m.role == Role.LABELLER


def test_the_last_owner_cannot_be_demoted(personas):
    m = _membership(personas, "owner")
    response = personas.client("owner").post(
        reverse("member_role", args=["acme", m.pk]), {"role": Role.EDITOR}, **HTMX
    )
    assert response.status_code == 422
    assert "A project needs at least one owner" in response.content.decode()
    m.refresh_from_db()
    assert m.role == Role.OWNER


def test_the_last_owner_cannot_be_removed(personas):
    m = _membership(personas, "owner")
    response = personas.client("owner").post(
        reverse("member_remove", args=["acme", m.pk]), **HTMX
    )
    assert response.status_code == 422
    assert "A project needs at least one owner" in response.content.decode()
    assert Membership.objects.filter(pk=m.pk).exists()


def test_an_owner_who_keeps_their_role_stays_on_the_table(personas):
    me = _membership(personas, "owner")
    response = personas.client("owner").post(
        reverse("member_role", args=["acme", me.pk]), {"role": Role.OWNER}, **HTMX
    )
    assert response.status_code == 200
    assert "HX-Redirect" not in response
    assert 'id="member-table"' in response.content.decode()


def test_with_a_second_owner_the_first_may_step_down(personas):
    editor = _membership(personas, "editor")
    client = personas.client("owner")
    client.post(reverse("member_role", args=["acme", editor.pk]), {"role": Role.OWNER}, **HTMX)
    me = _membership(personas, "owner")
    response = client.post(
        reverse("member_role", args=["acme", me.pk]), {"role": Role.EDITOR}, **HTMX
    )
    # No longer an owner: the page reloads without the controls they lost.
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("member_list", args=["acme"])
    me.refresh_from_db()
    assert me.role == Role.EDITOR


def test_owner_removes_a_member_and_their_tokens(personas):
    m = _membership(personas, "labeller")
    token_create(user=personas.labeller, project=personas.project, name="script")
    response = personas.client("owner").post(reverse("member_remove", args=["acme", m.pk]))
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=m.pk).exists()
    assert not ApiToken.objects.filter(user=personas.labeller).exists()
    assert personas.client("labeller").get(
        reverse("project_home", args=["acme"])
    ).status_code == 404


def test_an_owner_who_leaves_is_sent_to_the_project_list(personas):
    MembershipFactory(project=personas.project, user=UserFactory(username="boss2"),
                      role=Role.OWNER)
    me = _membership(personas, "owner")
    response = personas.client("owner").post(
        reverse("member_remove", args=["acme", me.pk]), **HTMX
    )
    assert response["HX-Redirect"] == reverse("project_list")
    assert not Membership.objects.filter(pk=me.pk).exists()


@pytest.mark.parametrize("who", ["editor", "labeller"])
def test_only_owners_manage_members(personas, who):
    client = personas.client(who)
    target = _membership(personas, "labeller" if who == "editor" else "editor")
    newcomer = UserFactory(username="newcomer")
    add = client.post(reverse("member_list", args=["acme"]), {"user": "newcomer", "role": "owner"})
    role = client.post(reverse("member_role", args=["acme", target.pk]), {"role": "owner"})
    remove = client.post(reverse("member_remove", args=["acme", target.pk]))
    assert (add.status_code, role.status_code, remove.status_code) == (403, 403, 403)
    target.refresh_from_db()
    assert target.role != Role.OWNER
    assert not Membership.objects.filter(user=newcomer).exists()


def test_member_ids_of_another_project_are_404(personas):
    theirs = Membership.objects.get(project=personas.other_project)
    client = personas.client("owner")
    assert client.post(reverse("member_role", args=["acme", theirs.pk]),
                       {"role": "labeller"}).status_code == 404
    assert client.post(reverse("member_remove", args=["acme", theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == Role.OWNER


def test_member_actions_take_post_only(personas):
    m = _membership(personas, "labeller")
    client = personas.client("owner")
    assert client.get(reverse("member_role", args=["acme", m.pk])).status_code == 405
    assert client.get(reverse("member_remove", args=["acme", m.pk])).status_code == 405


def test_members_page_query_count_does_not_grow_with_members(
    personas, django_assert_max_num_queries
):
    for _ in range(10):
        MembershipFactory(project=personas.project, user=UserFactory(), role=Role.LABELLER)
    client: Client = personas.client("owner")
    with django_assert_max_num_queries(6):
        assert client.get(reverse("member_list", args=["acme"])).status_code == 200
