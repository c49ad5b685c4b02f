"""The console in a real browser: headless Chromium (Debian's package, driven by Playwright)
against a real `timetravel serve` over a warehouse the demo fleet filled (select, snapshot
and quality of two runs, one training set built through the API).

Every page loads with no console error and no failed request, and is screenshotted into
.cache/artifacts/console/; the look-up form shows the API's values; a bad token is refused;
a reader cannot rebuild, an admin can.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api.conftest import ADMIN, READER, auth
from tests.collect.test_snapshot import source
from tests.utils.servers import wait_until_up
from timetravel.collect.selection import select_contexts
from timetravel.collect.snapshot import snapshot_facts
from timetravel.config import (
    Allocation,
    Config,
    QualityCheck,
    QualitySettings,
    SelectionSettings,
    SnapshotSettings,
    Threshold,
)
from timetravel.demo.fleet import Fleet, free_port
from timetravel.demo.population import write_population
from timetravel.demo.world import World
from timetravel.quality.profile import profile_run
from timetravel.warehouse.store import DeltaStore

pytestmark = [pytest.mark.spark, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".cache" / "artifacts" / "console"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# As root in a container, and with no network beyond loopback: no sandbox, and none of
# Chromium's own background connections (refused here, and logged as failures).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WORLD = {"seed": 4, "members": 120}
RUN_TIMES = ["2026-06-01T06:00:00Z", "2026-06-02T06:00:00Z"]
CHECKS = [
    QualityCheck(
        source="ratings",
        field="thumbs_up",
        max_null_rate=Threshold(fail=0.1),
        max_drift=Threshold(warn=0.1, fail=0.25),
    ),
    QualityCheck(source="member-profile", min_coverage=Threshold(fail=0.9)),
]
FEATURES = ["ratings_count", "plan"]
AS_OF = "2026-06-03T00:00:00Z"  # after both runs' snapshots (the fleet's clock: 06-02 12:00)


@dataclass
class Site:
    url: str
    runs: list[str]
    training_set: str
    pages: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def site(  # type: ignore[no-untyped-def]
    spark, test_config: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("console")
    with Fleet.up(root / "fleet", world=WORLD, services=("ratings", "member-profile")) as fleet:
        fleet.clock.set("2026-06-02T12:00:00Z")
        config = test_config.model_copy(
            update={
                "warehouse": test_config.warehouse.model_copy(update={"root": str(root / "wh")}),
                "selection": SelectionSettings(allocation=Allocation(sample_size=60), seed=2),
                "snapshot": SnapshotSettings(
                    fleet_file=str(fleet.state_dir / "fleet.json"),
                    sources=[source("ratings"), source("member-profile")],
                ),
                "quality": QualitySettings(checks=CHECKS),
                "api": test_config.api.model_copy(
                    update={"state_dir": str(root / "state"), "workers": 1}
                ),
                "query": test_config.query.model_copy(update={"engine": "duckdb"}),
            }
        )
        store = DeltaStore(spark, config)
        write_population(store, World(**WORLD), RUN_TIMES[0])  # type: ignore[arg-type]
        runs = []
        for at in RUN_TIMES:
            run_id = select_contexts(store, config.selection, at).run_id
            snapshot_facts(store, config, run_id)
            profile_run(store, config, run_id)
            runs.append(run_id)
        conf = root / "conf.yaml"
        conf.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
        port = free_port()
        env = {**os.environ, "TIMETRAVEL_API_TOKENS": f"reader:{READER},admin:{ADMIN}"}
        server = subprocess.Popen(
            [sys.executable, "-m", "timetravel.cli", "--conf", str(conf), "serve"]
            + ["--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, server)
            labels = [{"member_id": m, "label_time": AS_OF, "y": m % 2} for m in range(20)]
            submitted = httpx.post(
                f"{url}/v1/training-sets",
                json={"labels": labels, "features": FEATURES, "engine": "duckdb"},
                headers=auth(ADMIN),
                timeout=30,
            )
            assert submitted.status_code == 202, submitted.text
            job = submitted.json()["id"]
            _wait_for_job(url, job)
            yield Site(url, runs, job)
        finally:
            server.terminate()
            server.communicate(timeout=20)


def _wait_for_job(url: str, job: str) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/v1/training-sets/{job}", headers=auth(), timeout=10).json()
        if status["status"] in ("succeeded", "failed", "cancelled"):
            assert status["status"] == "succeeded", status
            return
        time.sleep(0.5)
    raise AssertionError(f"training set {job} did not finish in 180 s")


class Browser:
    """One browser context (its own cookies), recording console errors and failed requests."""

    def __init__(self, playwright: Any, url: str) -> None:
        assert Path(CHROMIUM).exists(), (
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        )
        self.url = url
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.context = self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.downloads: list[str] = []
        self.failed: list[tuple[str, str, str | None]] = []
        self.page.on("download", lambda d: self.downloads.append(d.url))
        self.page.on("requestfailed", lambda r: self.failed.append((r.method, r.url, r.failure)))

    @property
    def problems(self) -> list[str]:
        # A link that turns into a download ends its navigation as "aborted": not a failure.
        failed = [
            f"failed: {method} {url} ({why})"
            for method, url, why in self.failed
            if not (url in self.downloads and why == "net::ERR_ABORTED")
        ]
        return self.errors + failed

    def sign_in(self, token: str) -> Any:
        self.page.goto(f"{self.url}/ui/sign-in")
        self.page.fill("input[name=token]", token)
        with self.page.expect_navigation():
            self.page.click("button[type=submit]")
        return self.page

    def visit(self, path: str, shot: str | None = None) -> Any:
        response = self.page.goto(f"{self.url}{path}")
        assert response is not None and response.status == 200, (path, response)
        if shot:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            self.page.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        return self.page

    def close(self) -> None:
        self.browser.close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


def test_every_page_loads_clean_and_is_screenshotted(site: Site, playwright: Any) -> None:
    browser = Browser(playwright, site.url)
    try:
        page = browser.sign_in(READER)
        assert page.url.endswith("/ui/runs")
        cookie = next(c for c in browser.context.cookies() if c["name"] == "tt_console")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        assert READER not in cookie["value"]  # a session id, not the token

        runs = browser.visit("/ui/runs", "runs")
        assert runs.locator("#runs tr").count() == 1 + len(site.runs)
        assert runs.locator("#timeline svg rect").count() == len(site.runs)
        assert "member-profile" in runs.inner_text("#runs")
        filtered = browser.visit("/ui/runs?status=failed")
        assert filtered.locator("#runs tr").count() == 1  # the header: no run failed

        run = browser.visit(f"/ui/runs/{site.runs[-1]}", "run")
        assert run.locator("#strata tr").count() >= 2
        assert "drift_previous" in run.inner_text("#quality")
        assert run.locator("#drift svg").count() >= 1
        assert "context_sets v" in run.inner_text("#stages")
        with run.expect_navigation():
            run.click("#report")
        assert "Histograms" in run.inner_text("body") and run.locator("svg").count() >= 2
        browser.visit(f"/ui/runs/{site.runs[-1]}/report", "report")

        features = browser.visit("/ui/features?q=ratings", "features")
        names = features.locator("#features td:first-child").all_inner_texts()
        assert "ratings_count" in names and "plan" not in names

        sets = browser.visit("/ui/training-sets", "training-sets")
        assert site.training_set in sets.inner_text("#training-sets")
        one = browser.visit(f"/ui/training-sets/{site.training_set}", "training-set")
        assert one.locator("#preview tr").count() == 1 + 20
        assert "facts/ratings" in one.inner_text("#lineage")
        assert one.locator("#rebuild").count() == 0  # a reader sees no rebuild button
        with one.expect_download() as download:
            one.click("#downloads a:text('CSV')")
        assert download.value.suggested_filename == f"{site.training_set}.csv"
        lines = Path(download.value.path()).read_text().splitlines()
        assert len(lines) == 1 + 20 and "ratings_count" in lines[0]

        browser.visit("/ui/lookup", "lookup")
        assert browser.problems == []
    finally:
        browser.close()


def test_the_lookup_form_shows_the_apis_values(site: Site, playwright: Any) -> None:
    browser = Browser(playwright, site.url)
    try:
        page = browser.sign_in(READER)
        api = {}
        for key in range(WORLD["members"]):  # a member the runs sampled: values, not nulls
            api = httpx.get(
                f"{site.url}/v1/contexts/{key}/features",
                params={"as_of": AS_OF, "features": ",".join(FEATURES)},
                headers=auth(),
                timeout=30,
            ).json()
            if api["sources"]["ratings"]["run_id"] and api["features"]["plan"] is not None:
                break
        assert api["sources"]["ratings"]["run_id"] in site.runs
        page = browser.visit("/ui/lookup")
        page.fill("input[name=key]", str(api["key"]["member_id"]))
        page.fill("input[name=as_of]", AS_OF)
        page.fill("input[name=features]", ",".join(FEATURES))
        with page.expect_navigation():
            page.click("#lookup button[type=submit]")
        shown = {name: page.inner_text(f"td[data-feature='{name}']") for name in FEATURES}
        assert shown == {n: str(v) for n, v in api["features"].items()}
        assert api["sources"]["ratings"]["run_id"] in page.inner_text("#sources")
        # With a staleness bound the snapshots (06-02 12:00) are too old for ratings only.
        page.fill("input[name=max_staleness]", "ratings=1h")
        with page.expect_navigation():
            page.click("#lookup button[type=submit]")
        bounded = httpx.get(
            f"{site.url}/v1/contexts/{api['key']['member_id']}/features",
            params={"as_of": AS_OF, "features": ",".join(FEATURES), "max_staleness": "ratings=1h"},
            headers=auth(),
            timeout=30,
        ).json()
        assert bounded["features"]["ratings_count"] is None and bounded["features"]["plan"]
        shown = {name: page.inner_text(f"td[data-feature='{name}']") for name in FEATURES}
        assert shown == {n: "null" if v is None else str(v) for n, v in bounded["features"].items()}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lookup-result.png"), full_page=True)
        assert browser.problems == []
        # A bad key is named on the page (a 422), not a stack trace.
        refused = page.goto(f"{site.url}/ui/lookup?key=-1&as_of={AS_OF}")
        assert refused is not None and refused.status == 422
        assert "whole number" in page.inner_text("#lookup-error")
    finally:
        browser.close()


def test_a_bad_token_is_refused_and_pages_need_a_session(site: Site, playwright: Any) -> None:
    browser = Browser(playwright, site.url)
    try:
        response = browser.page.goto(f"{site.url}/ui/runs")
        assert response is not None and browser.page.url.endswith("/ui/sign-in")
        page = browser.sign_in("not-a-token-at-all-0000")
        assert "not valid" in page.inner_text("#sign-in-error")
        assert [c for c in browser.context.cookies() if c["name"] == "tt_console"] == []
    finally:
        browser.close()
    # Without the cookie the API's bearer rule still holds everywhere else.
    assert httpx.get(f"{site.url}/v1/runs", timeout=10).status_code == 401


def test_a_reader_cannot_rebuild_and_an_admin_can(site: Site, playwright: Any) -> None:
    reader = Browser(playwright, site.url)
    try:
        page = reader.sign_in(READER)
        page = reader.visit(f"/ui/training-sets/{site.training_set}")
        csrf = page.get_attribute("header input[name=csrf]", "value")
        # The button is not there; a hand-made POST with a valid session and CSRF token is
        # refused all the same.
        forged = page.request.post(
            f"{site.url}/ui/training-sets/{site.training_set}/rebuild",
            form={"csrf": csrf or ""},
            max_redirects=0,
        )
        assert forged.status == 403 and "admin role" in forged.text()
        # And a POST without the CSRF token is refused before the role is even looked at.
        stale = page.request.post(
            f"{site.url}/ui/training-sets/{site.training_set}/rebuild", form={}
        )
        assert stale.status == 403
    finally:
        reader.close()
    admin = Browser(playwright, site.url)
    try:
        page = admin.sign_in(ADMIN)
        page = admin.visit(f"/ui/training-sets/{site.training_set}")
        with page.expect_navigation():
            page.click("#rebuild button")
        assert f"Rebuild of {site.training_set} queued" in page.inner_text("#rebuild-queued")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "rebuild-queued.png"), full_page=True)
        assert admin.problems == []
    finally:
        admin.close()
