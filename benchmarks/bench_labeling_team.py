"""Labelling for a team (issue 16). Not a test; run ``.venv/bin/python -m
benchmarks.bench_labeling_team``.

1. ``label_three_annotators_p95_ms``: three labellers work the same session of 10,000 items
   (k = 3: every item goes to all three) at the same time against a RUNNING server (gunicorn in
   a subprocess, as bench_labeling's load test). Each signs in with its own session and CSRF
   token, then loops submit-and-next (the htmx POST that stores one item's labels and answers
   with the next item). Value = p95 of the POST's round trip as the client sees it (server,
   WSGI, loopback). Bound 50 ms. Beside it, in the same run, the same loop with ONE labeller
   alone (``alone_p95_ms``): what concurrency costs, a figure that survives a noisy machine
   better than the absolute one.
2. ``adjudicate_next_p95_ms``: an owner adjudicates a session of 10,000 items labelled by three
   annotators (about a third disagree on each criterion): each step is the htmx POST that saves
   a gold label and answers with the saved row and the next disagreement after the page
   (apps/labeling/adjudication.py). Measured in-process through Django's test client
   (middleware, view, template, real database), as bench_labeling's p95. Bound 100 ms.

The database is DATABASE_URL (PostgreSQL; default ``rubriclab_bench``); the benchmark's
projects and users are deleted afterwards. The last two lines are ``BENCH`` lines.
"""

from __future__ import annotations

import os
import random
import re
import statistics
import threading
import time

from benchmarks.bench_import import environment, prepare_database, setup_django
from benchmarks.bench_labeling import (
    ASSIGNMENT_RE,
    PASSWORD,
    Server,
    _annotators,
    _cleanup,
    _dataset,
    _project,
    _send,
    _vacuum,
)

N_ITEMS = 10_000
TEAM = 3
SUBMITS_EACH = 150  # per labeller; the first 10 of each warm up and are not counted
WARM_UP = 10
BOUND_LABEL_MS = 50.0

ADJUDICATE_STEPS = 200
BOUND_ADJUDICATE_MS = 100.0
ROW_RE = re.compile(r'id="d-(\d+)-(\w+)"')
TAIL_RE = re.compile(r'id="tail" name="tail" value="([\d.]+)"')


def _clean(slug: str, prefix: str) -> None:
    """bench_labeling's clean-up, after the gold labels (their rows point at the items that
    clean-up deletes in bulk)."""
    from apps.labeling.models import GoldLabel

    GoldLabel.objects.filter(item__dataset__project__slug=slug).delete()
    _cleanup(slug, prefix)


# -- 1. three labellers at once ----------------------------------------------------------------

def _labeller(base: str, screen: str, username: str, seed: int, times: list, problems: list,
              start: threading.Barrier, counters: dict) -> None:
    import httpx

    rng = random.Random(seed)
    try:
        with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as http:
            login = _send(http, "GET", "/accounts/login/", counters)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                              login.text).group(1)
            signed = _send(http, "POST", "/accounts/login/", counters, data={
                "username": username, "password": PASSWORD, "csrfmiddlewaretoken": token})
            if signed.status_code != 302:
                problems.append(f"{username}: sign-in answered {signed.status_code}")
            page = _send(http, "GET", screen, counters)
            start.wait(timeout=300)
            headers = {"HX-Request": "true", "X-CSRFToken": http.cookies["csrftoken"]}
            found = ASSIGNMENT_RE.search(page.text)
            for n in range(SUBMITS_EACH):
                if found is None:
                    problems.append(f"{username}: ran out of items after {n}")
                    return
                data = {"assignment": found.group(1), "c_correct": rng.choice("123"),
                        "c_safe": rng.choice("01")}
                began = time.perf_counter()
                answer = _send(http, "POST", screen, counters, data=data, headers=headers)
                elapsed = (time.perf_counter() - began) * 1000
                if answer.status_code != 200 or "Saved:" not in answer.text:
                    problems.append(f"{username}: submit answered {answer.status_code}")
                    return
                if n >= WARM_UP:
                    times.append(elapsed)
                found = ASSIGNMENT_RE.search(answer.text)
    except Exception as exc:  # noqa: BLE001 - reported with the figure, not hidden
        problems.append(f"{username}: stopped: {exc!r}")
        start.abort()


def _team_round(env, users, screen: str, *, who: list) -> tuple[list[float], list[str]]:
    server = Server(env)
    times: list[float] = []
    problems: list[str] = []
    counters = {"resent": 0}
    try:
        server.wait_ready()
        start = threading.Barrier(len(who))
        threads = [threading.Thread(target=_labeller, args=(
            server.url, screen, u.username, i, times, problems, start, counters))
            for i, u in enumerate(who)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    return times, problems


def bench_team(env) -> tuple[float, float, list[str]]:
    from django.db import connection
    from django.urls import reverse

    from apps.labeling.models import HumanLabel
    from apps.labeling.services import session_create

    slug, prefix = "bench-labelling-team", "bench-team"
    _clean(slug, prefix)
    try:
        project, owner, version = _project(slug)
        dataset = _dataset(project, N_ITEMS, "bench-10k")
        users = _annotators(project, prefix, TEAM + 1, password=PASSWORD)
        team, alone = users[:TEAM], users[TEAM]
        session = session_create(project=project, version=version, dataset=dataset,
                                 name="team", overlap=TEAM, assignees=team,
                                 selection={"mode": "all"}, user=owner)
        solo = session_create(project=project, version=version, dataset=dataset,
                              name="alone", overlap=1, assignees=[alone],
                              selection={"mode": "all"}, user=owner)
        _vacuum()
        screens = [reverse("label_screen", kwargs={"slug": slug, "session_id": s.pk})
                   for s in (session, solo)]
        connection.close()
        alone_times, alone_problems = _team_round(env, users, screens[1], who=[alone])
        team_times, team_problems = _team_round(env, users, screens[0], who=team)
        stored = HumanLabel.objects.filter(session=session).count()
        expected = TEAM * SUBMITS_EACH * 2
        problems = alone_problems + team_problems
        if stored != expected:
            problems.append(f"stored {stored} labels, expected {expected}")
        team_p95 = statistics.quantiles(team_times, n=100)[94]
        alone_p95 = statistics.quantiles(alone_times, n=100)[94]
        print(f"three labellers, one session of {N_ITEMS:,} items, k={TEAM}: n={len(team_times)} "
              f"median {statistics.median(team_times):.1f} ms, p95 {team_p95:.1f} ms, max "
              f"{max(team_times):.1f} ms; one labeller alone: median "
              f"{statistics.median(alone_times):.1f} ms, p95 {alone_p95:.1f} ms; "
              f"{stored} labels stored; problems: {problems[:3]}", flush=True)
        return team_p95, alone_p95, problems
    finally:
        _clean(slug, prefix)


# -- 2. adjudication ---------------------------------------------------------------------------

def _disagreeing_labels(session, users) -> None:
    """Every pool item labelled by the three annotators; one of them differs on about a third
    of the items per criterion. One INSERT ... SELECT per criterion."""
    from django.db import connection

    from apps.labeling.models import HumanLabel, SessionItem

    l_table, s_table = HumanLabel._meta.db_table, SessionItem._meta.db_table
    names = "ARRAY[" + ",".join(f"'{u.username}'" for u in users) + "]"
    ids = "ARRAY[" + ",".join(str(u.pk) for u in users) + "]"
    with connection.cursor() as cursor:
        for key, signature, levels in (("correct", "ordinal:1,2,3", 3), ("safe", "binary:0,1", 2)):
            base = 1 if key == "correct" else 0
            cursor.execute(
                f"INSERT INTO {l_table} (item_id, criterion_key, scale_signature, annotator, "
                "user_id, value, comment, source, session_id, shown_order, round, created_at, "
                "updated_at) "
                f"SELECT si.item_id, %s, %s, ({names})[a + 1], ({ids})[a + 1], "
                "(CASE WHEN a = 2 AND (si.position * 7 + %s) %% 3 = 0 "
                f"THEN (si.position + 1) %% %s ELSE si.position %% %s END + %s)::text, "
                "'', 'screen', si.session_id, '', 1, now(), now() "
                f"FROM {s_table} si, generate_series(0, 2) a WHERE si.session_id = %s",
                [key, signature, len(key), levels, levels, base, session.pk])
    _vacuum()


def bench_adjudicate() -> tuple[float, int]:
    from django.test import Client
    from django.urls import reverse

    from apps.labeling.adjudication import disagreement_counts
    from apps.labeling.models import GoldLabel
    from apps.labeling.services import session_create

    slug, prefix = "bench-adjudicate", "bench-adj"
    _clean(slug, prefix)
    try:
        project, owner, version = _project(slug)
        dataset = _dataset(project, N_ITEMS, "bench-10k")
        users = _annotators(project, prefix, TEAM)
        session = session_create(project=project, version=version, dataset=dataset,
                                 name="adjudicate", overlap=TEAM, assignees=users,
                                 selection={"mode": "all"}, user=owner)
        _disagreeing_labels(session, users)
        counts = disagreement_counts(session)
        print(f"adjudication set-up: {N_ITEMS:,} items x {TEAM} annotators, "
              f"{counts['all']:,} disagreements", flush=True)
        page = reverse("adjudicate", kwargs={"slug": slug, "session_id": session.pk})
        client = Client()
        client.force_login(owner)
        first = client.get(page)
        assert first.status_code == 200, first.status_code
        body = first.content.decode()
        rows = ROW_RE.findall(body)
        tail = TAIL_RE.search(body).group(1)
        rng = random.Random(3)
        times: list[float] = []
        for step in range(ADJUDICATE_STEPS):
            item_id, key = rows.pop(0)
            value = rng.choice("123") if key == "correct" else rng.choice("01")
            began = time.perf_counter()
            response = client.post(page, {"item": item_id, "criterion": key, "value": value,
                                          "tail": tail}, HTTP_HX_REQUEST="true")
            elapsed = (time.perf_counter() - began) * 1000
            answer = response.content.decode()
            assert response.status_code == 200 and "Saved. Gold:" in answer, answer[:500]
            if step >= WARM_UP:
                times.append(elapsed)
            following = ROW_RE.findall(answer)[1:]  # the saved row first, then the next one
            rows += following
            found = TAIL_RE.search(answer)
            tail = found.group(1) if found else tail
        saved = GoldLabel.objects.filter(item__dataset=dataset).count()
        p95 = statistics.quantiles(times, n=100)[94]
        print(f"save gold and show the next disagreement: n={len(times)} median "
              f"{statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {max(times):.1f} ms; "
              f"{saved} gold labels stored", flush=True)
        return p95, saved
    finally:
        _clean(slug, prefix)


def main() -> None:
    env = environment()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    prepare_database(env)
    setup_django(env)
    from django.db import connection

    print(f"database {connection.vendor} {connection.settings_dict['NAME']}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    if connection.vendor != "postgresql":
        raise SystemExit("bench_labeling_team needs PostgreSQL (DATABASE_URL=postgres://...)")
    adjudicate_p95, _ = bench_adjudicate()
    team_p95, alone_p95, problems = bench_team(env)
    print(f"BENCH label_three_annotators_p95_ms value={team_p95:.2f} unit=ms "
          f"bound={BOUND_LABEL_MS:g} ratio={team_p95 / BOUND_LABEL_MS:.3f} "
          f"alone_p95_ms={alone_p95:.2f} problems={len(problems)}")
    print(f"BENCH adjudicate_next_p95_ms value={adjudicate_p95:.2f} unit=ms "
          f"bound={BOUND_ADJUDICATE_MS:g} ratio={adjudicate_p95 / BOUND_ADJUDICATE_MS:.3f}")


if __name__ == "__main__":
    main()
