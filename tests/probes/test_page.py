"""The robustness section of the calibration page and the "Probe this judge" button: the
table and chart worst first, fooling examples with the judge's rationale (escaped), and the
usual access block (outsider 404, labeller 403, wrong method 405)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from apps.datasets.models import Item
from apps.probes.models import ProbeRun
from apps.probes.services import probe_run_start
from tests.probes.worlds import gullible_world, run_all

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(personas, fake):
    return gullible_world(personas.project, fake, n=40)


def _page(client, world):
    url = reverse("calibration_dashboard", args=["acme", "len"])
    return client.get(url, {"dataset": world.dataset.pk, "judge": world.base.pk})


def test_the_page_says_when_the_judge_was_never_probed_and_offers_the_button(world, personas):
    body = _page(personas.client("editor"), world).content.decode()
    assert "Robustness: how easily a trivial answer fools this judge" in body
    assert "Not measured: this judge has not been probed" in body
    assert "Probe this judge" in body


def test_the_robustness_section_shows_the_probes_worst_first_with_escaped_examples(world,
                                                                                  personas):
    Item.objects.filter(pk=world.items[0].pk).update(
        prompt="<script>alert(1)</script> step by step?")
    probe_run = probe_run_start(rubric=world.version.rubric, dataset=world.dataset,
                                judge=str(world.base.pk), per_probe=40,
                                probes="prompt_echo,master_key_reasoning,empty")
    run_all(probe_run.run)
    body = _page(personas.client("owner"), world).content.decode()
    section = body[body.index('id="robustness"'):]
    assert 'class="probe-chart"' in section
    order = [section.index(f"<code>{n}</code>") for n in
             ("master_key_reasoning", "prompt_echo", "empty")]
    assert order == sorted(order)  # worst first
    assert "&lt;script&gt;alert(1)&lt;/script&gt; step by step?" in section
    assert "<script>alert(1)" not in body
    assert "Scripted: the answer reasons step by step" in section  # the judge's rationale
    assert "master_key_reasoning: fooled on" in body  # a gate reason at the top as well


def test_probe_this_judge_starts_a_probe_run_for_editors_only(world, personas):
    url = reverse("probe_start", args=["acme", "len"])
    data = {"dataset": world.dataset.pk, "judge": world.base.pk, "per_probe": "5"}
    assert personas.client("outsider").post(url, data).status_code == 404
    assert personas.client("labeller").post(url, data).status_code == 403
    assert personas.client("editor").get(url).status_code == 405
    assert not ProbeRun.objects.exists()
    response = personas.client("editor").post(url, data)
    probe_run = ProbeRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("run_detail", args=["acme", probe_run.run_id])
    assert probe_run.per_probe == 5
    bad = personas.client("editor").post(url, {**data, "per_probe": "9" * 50}, follow=True)
    assert "per-probe must be a whole number" in bad.content.decode()
    assert ProbeRun.objects.count() == 1
    assert personas.client("editor").post(url, {**data, "dataset": "x"}).status_code == 404
