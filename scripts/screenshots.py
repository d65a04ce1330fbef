#!/usr/bin/env python3
"""Regenerate the README's admin screenshots from traces the demo itself made: ``python scripts/screenshots.py``.

No fixture rows: the script runs ``demo.py --once`` in a data folder of its
own (a visitor's requests, the Celery chains they start with a retried task,
LLM calls over HTTP to the stand-in server, the database writer), serves that
database with ``manage.py runserver``, and photographs the admin in headless
Chromium (Playwright) at 1440 by 900 with the navigation sidebar as the admin
opens it:

* ``docs/images/admin-list.png``: the trace list;
* ``docs/images/admin-trace.png``: the asking trace with the most spans, its
  first LLM call selected;
* ``docs/images/admin-trace-narrow.png``: the same page 800 px wide, the
  details docked at the bottom of the window;
* ``docs/images/admin-overview.png``: the overview of the last hour.

Options: ``--out`` (another folder), ``--keep`` (keep the data folder),
``--chromium`` (a Chromium binary; default: ``chromium`` on the PATH, else
Playwright's own).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bootstrap import reexec_in_venv  # noqa: E402

reexec_in_venv(Path(__file__))  # Playwright and the project: the dev tools' .venv

ADMIN_USER = "admin"
ADMIN_PASSWORD = "agentops-demo"  # the demo's admin (demo_project/runner.py)


def run_demo(data_dir: Path) -> None:
    """``demo.py --once``: the scenario, checked complete; every process it started is stopped again."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CELERY_", "DATABASE_URL"))}
    env["DEMO_DATA_DIR"] = str(data_dir)
    print("==> running the demo (demo.py --once)", flush=True)
    subprocess.run([sys.executable, str(ROOT / "demo.py"), "--once"], cwd=ROOT, env=env, check=True)


def pick_trace(data_dir: Path) -> str:
    """The asking request's trace with the most spans (a retried task makes it the richest)."""
    os.environ["DEMO_DATA_DIR"] = str(data_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "demo_project.settings"
    import django

    django.setup()
    from agentops_django.models import Trace

    trace = Trace.objects.filter(kind="request", total_tokens__gt=0).order_by("-span_count", "-started_at").first()
    if trace is None:
        raise SystemExit("the demo left no request trace with LLM calls")
    return trace.trace_id


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, DEMO_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="demo_project.settings")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", "--insecure", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=2).close()
            return server
        except OSError:
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("the web server did not start")


def photograph(base: str, trace_id: str, out: Path, chromium: str | None) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        page = browser.new_page(viewport={"width": 1440, "height": 900}, device_scale_factor=1)
        page.goto(f"{base}/admin/login/?next=/admin/agentops_django/trace/")
        page.fill("#id_username", ADMIN_USER)
        page.fill("#id_password", ADMIN_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_url("**/admin/agentops_django/trace/")
        page.screenshot(path=str(out / "admin-list.png"))

        page.goto(f"{base}/admin/agentops_django/trace/{trace_id}/change/")
        page.wait_for_selector(".ao-rows .ao-row")
        page.locator(".ao-row.ao-k-llm a.ao-label").first.click()
        page.wait_for_selector("#ao-detail .ao-span")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / "admin-trace.png"))
        page.set_viewport_size({"width": 800, "height": 900})
        # Narrow, the details dock at the bottom of the window: show the rows above them.
        page.locator(".ao-zoomstrip").evaluate("el => el.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / "admin-trace-narrow.png"))
        page.set_viewport_size({"width": 1440, "height": 900})
        page.goto(f"{base}/admin/agentops_django/trace/overview/?window=1h")
        page.wait_for_selector(".ao-overview svg")
        page.screenshot(path=str(out / "admin-overview.png"), full_page=True)
        browser.close()
    for name in ("admin-list.png", "admin-trace.png", "admin-trace-narrow.png", "admin-overview.png"):
        print(f"  wrote {out / name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--keep", action="store_true", help="keep the demo's data folder")
    parser.add_argument("--chromium", default=shutil.which("chromium"), help="a Chromium binary")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="agentops-screenshots-"))
    server = None
    try:
        run_demo(data_dir)
        trace_id = pick_trace(data_dir)
        from demo_project.processes import free_port

        port = free_port()
        print(f"==> photographing trace {trace_id}", flush=True)
        server = serve(data_dir, port)
        photograph(f"http://127.0.0.1:{port}", trace_id, args.out, args.chromium)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.keep:
            print(f"  the demo's data: {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
