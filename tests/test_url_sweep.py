"""Walk every URL pattern of the app as each persona (STYLE.md 2 and 9).

Signed out: the login redirect. Outsider (a member of another project): 404 everywhere, so a
project's existence does not leak. Labeller: 403 on everything but the pages of their own work.
Afterwards the other project's rows are unchanged.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from apps.projects.models import Role
from tests.factories import MembershipFactory, UserFactory
from tests.world import build_world

# Pages any member may use; everything else under /p/<slug>/ needs owner or editor.
LABELLER_ALLOWED = {"project_home", "token_list", "token_revoke",
                    # their own labelling work, in sessions they are assigned to
                    "session_list", "label_screen", "label_skip", "label_undo", "label_history",
                    "label_edit", "session_export"}


def project_patterns() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern) and p.name:
                route = prefix + str(p.pattern)
                if route.startswith("p/<slug:slug>/"):
                    found.append((p.name, route))

    walk(get_resolver().url_patterns, "")
    return found


PATTERNS = project_patterns()
# Pages that name an object besides the project: the ids of another project must not open them.
OBJECT_PATTERNS = [(n, r) for n, r in PATTERNS if r.count("<") > 1]


@pytest.fixture
def world(personas):
    w = build_world(personas.project, owner=personas.owner, member=personas.editor)
    other_editor = UserFactory(username="other-editor")
    MembershipFactory(project=personas.other_project, user=other_editor, role=Role.EDITOR)
    other = build_world(personas.other_project, owner=personas.outsider, member=other_editor)
    return w, other


def _url(name: str, route: str, kwargs: dict) -> str:
    needed = {k: v for k, v in kwargs.items() if f":{k}>" in route}
    return reverse(name, kwargs=needed)


def _snapshot(project) -> dict:
    from apps.datasets.models import Item
    from apps.judging.models import Verdict
    from apps.labeling.models import HumanLabel
    from apps.projects.models import ApiToken, Membership
    from apps.rubrics.models import Criterion, RubricVersion

    return {
        "versions": list(RubricVersion.objects.filter(rubric__project=project)
                         .values_list("id", "number", "published_at", "updated_at")),
        "criteria": list(Criterion.objects.filter(version__rubric__project=project)
                         .values_list("id", "key", "position", "levels")),
        "items": Item.objects.filter(dataset__project=project).count(),
        "labels": HumanLabel.objects.filter(item__dataset__project=project).count(),
        "verdicts": Verdict.objects.filter(run__project=project).count(),
        "members": list(Membership.objects.filter(project=project).values_list("id", "role")),
        "tokens": ApiToken.objects.filter(project=project).count(),
    }


def test_the_sweep_covers_the_project_pages():
    names = {name for name, _ in PATTERNS}
    assert {"project_home", "rubric_detail", "criterion_edit", "dataset_detail", "item_detail",
            "member_role", "token_revoke", "rubric_publish", "version_yaml", "session_list",
            "label_screen", "label_edit", "adjudicate", "session_export"} <= names


@pytest.mark.parametrize("name,route", PATTERNS)
def test_signed_out_gets_the_login_redirect(client, world, name, route):
    w, _ = world
    url = _url(name, route, w.kwargs())
    for method in (client.get, client.post):
        response = method(url)
        assert response.status_code == 302, (name, method.__name__)
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name,route", PATTERNS)
def test_outsider_gets_404(personas, world, name, route):
    w, other = world
    client = personas.client("outsider")
    before = _snapshot(w.project)
    url = _url(name, route, w.kwargs())
    statuses = {client.get(url).status_code,
                client.post(url, {"note": "x", "name": "x", "role": "owner"}).status_code}
    # 405 answers a method the page never takes, for any slug: it tells nothing about the project.
    assert 404 in statuses and statuses <= {404, 405}, (name, statuses)
    assert _snapshot(w.project) == before


@pytest.mark.parametrize("name,route", OBJECT_PATTERNS)
def test_objects_of_another_project_are_404_under_ones_own_slug(personas, world, name, route):
    w, other = world
    client = personas.client("owner")
    kwargs = other.kwargs() | {"slug": w.project.slug}
    before = _snapshot(other.project)
    url = _url(name, route, kwargs)
    statuses = {client.get(url).status_code,
                client.post(url, {"note": "x", "role": "owner"}).status_code}
    assert 404 in statuses and statuses <= {404, 405}, (name, statuses)
    assert _snapshot(other.project) == before


@pytest.mark.parametrize("name,route", PATTERNS)
def test_labeller_is_refused_outside_their_work(personas, world, name, route):
    w, _ = world
    client = personas.client("labeller")
    before = _snapshot(w.project)
    url = _url(name, route, w.kwargs())
    get = client.get(url)
    post = client.post(url, {"note": "x", "name": "x", "role": "owner", "direction": "up"})
    if name in LABELLER_ALLOWED:
        assert get.status_code in (200, 405), name
        # 422: a labelling form refused the sweep's made-up fields (nothing is stored).
        assert post.status_code in (200, 302, 404, 405, 422), name
    else:
        assert get.status_code in (403, 405), (name, get.status_code)
        assert post.status_code in (403, 405), (name, post.status_code)
        assert _snapshot(w.project) == before
