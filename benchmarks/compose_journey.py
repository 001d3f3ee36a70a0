"""ELN click-to-notebook-ready time on the compose stack: prints, asserts nothing.

Journey: the ELN's first POST to /hub/openbis-notebook until headless Chromium, having opened
the ELN's link (/hub/login?token=…&next=/user/{id}/notebooks/…), shows the notebook's cells.
Every run uses a fresh browser profile (no cached JavaScript).

- cold: a user the hub has never seen (no container, no volume), median of RUNS;
- warm: the same user again, server running, a new notebook each time, median of RUNS;
- baseline, same run, same images, same engine: plain JupyterHub + DockerSpawner (dummy
  authenticator, this file's config) with the same single-user image: the server started
  and the notebook put through the REST API, then the browser signs in on the login form
  and opens the notebook. Ratio = ours / baseline.
  With ``--baseline no-internal-ssl``: our own stack a second time, with
  JUPYTERHUB_INTERNAL_SSL=false, the same journey (what the isolation between users costs).
- CONCURRENT new users doing the cold journey at once, up to the notebook page's HTML (the
  sign-in and OAuth redirects followed, no rendering): successes, p50, p95, and the hub
  container's peak memory (docker stats, sampled). Not with Chromium: 20 browsers rendering
  on the test machine's own cores measure that machine, and Chromium aborts requests with
  ERR_NETWORK_CHANGED whenever Docker adds a container's network interface on the same host.

Goals: warm <= 1 s, cold <= 6 s, ratio <= 1.2, 20/20.

Run: .venv/bin/python -m benchmarks.compose_journey [--runs 5] [--concurrent 20]
     [--baseline plain|no-internal-ssl]   (--concurrent 0 skips the crowd)
(builds the images when missing, like the tests; takes a few minutes)
"""

import argparse
import asyncio
import contextlib
import json
import math
import secrets
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from tests.compose_stack import ELN_ORIGIN, ComposeStack
from tests.conftest import (
    CHROMIUM_ARGS,
    HUB_IMAGE,
    SINGLEUSER_IMAGE,
    build_images,
)
from tests.eln import eln_new_notebook, eln_notebook

DATASET = {
    "permId": {"permId": "20240115093000000-4"},
    "experiment": {"permId": {"permId": "20240115093000000-2"}},
}
OWNER = {"@type": "as.dto.experiment.Experiment", "identifier": {"identifier": "/LAB/PROJ/EXP1"}}
FOLDER = "bench"
TIMEOUT_MS = 300_000
RELOADS = [0]  # page loads redone after ERR_NETWORK_CHANGED, reported with the results

# Plain JupyterHub + DockerSpawner: what a site without our package would run.
BASELINE_CONFIG = """
c = get_config()
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "bench"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "docker"
c.DockerSpawner.image = {image!r}
c.DockerSpawner.network_name = {network!r}
c.DockerSpawner.use_internal_ip = True
c.DockerSpawner.prefix = {prefix!r}
c.DockerSpawner.volumes = {{{prefix!r} + "-user-{{username}}": "/home/jovyan"}}
c.DockerSpawner.notebook_dir = "/home/jovyan"
c.DockerSpawner.remove = True
c.DockerSpawner.mem_limit = "2G"
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = {name!r}
c.JupyterHub.ssl_cert = "/certs/server.pem"
c.JupyterHub.ssl_key = "/certs/server-key.pem"
c.JupyterHub.db_url = "sqlite:////tmp/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/tmp/jupyterhub_cookie_secret"
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"],
    "scopes": ["admin:users", "admin:servers", "access:servers"]}}]
"""


def notebook_for(file_name):
    return eln_notebook([DATASET], OWNER, file_name)


async def wait_for_cells(browser, url, file_name, login=None):
    """Open ``url`` in a fresh profile (signing in on the form when ``login`` is given) and
    wait until the notebook shows its title and the cell with its file name."""
    context = await browser.new_context()
    aborted = []  # loads Chromium aborted with ERR_NETWORK_CHANGED (tests/browser.py)
    context.on(
        "requestfailed",
        lambda r: "ERR_NETWORK_CHANGED" in (r.failure or "") and aborted.append(r.url),
    )
    try:
        page = await context.new_page()
        heading = page.get_by_role("heading", name="Jupyter notebook title, modify me!")
        cell = page.locator(".jp-CodeCell .cm-content", has_text=f"fileName='{file_name}'")
        try:
            await page.goto(url, timeout=TIMEOUT_MS)
        except PlaywrightError as e:
            if "ERR_NETWORK_CHANGED" not in str(e):
                raise
            aborted.append(url)
        if login and not aborted:
            await page.fill("#username_input", login)
            await page.fill("#password_input", "bench")
            await page.click("#login_submit")
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while not (await heading.is_visible() and await cell.is_visible()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not show the notebook ({RELOADS[0]} reloads)")
            if aborted:  # as a person would: reload the page (signed in by then)
                aborted.clear()
                RELOADS[0] += 1
                with contextlib.suppress(PlaywrightError):
                    await page.goto(page.url if "/notebooks/" in page.url else url)
            await page.wait_for_timeout(50)
    finally:
        await context.close()


async def ours(stack, browser, user, name):
    """Our journey's seconds: the ELN's two POSTs, then its link in the browser."""
    token = await asyncio.to_thread(stack.login, user)
    start = time.perf_counter()
    written, link = await asyncio.to_thread(
        eln_new_notebook, stack, token, user, FOLDER, name, notebook_for, ELN_ORIGIN
    )
    await wait_for_cells(browser, link, written["fileName"])
    return time.perf_counter() - start


def ours_without_browser(stack, user):
    """The journey up to the notebook page the browser would render: the ELN's two POSTs,
    then its link followed (sign-in, OAuth with the user's server) to the page's HTML."""
    token = stack.login(user)
    start = time.perf_counter()
    written, link = eln_new_notebook(
        stack, token, user, FOLDER, "analysis", notebook_for, ELN_ORIGIN
    )
    page = stack.session().get(link, timeout=330)
    page.raise_for_status()
    if not page.url.startswith(f"{stack.url}/user/{user}/notebooks/"):
        raise RuntimeError(f"{user} ended at {page.url}")
    return time.perf_counter() - start


class WithoutInternalSSL:
    """Our stack again, on the same engine, with JUPYTERHUB_INTERNAL_SSL=false."""

    label = "ours, internal_ssl off"

    def __init__(self, stack):
        self.stack = stack.up()
        self.spki_hash = stack.spki_hash()

    async def journey(self, browser, user, name, create):
        if create:
            await asyncio.to_thread(self.stack.control.add_user, user, f"{user}-password")
        return await ours(self.stack, browser, user, name)


class Baseline:
    """Plain JupyterHub + DockerSpawner in a container of our hub image (which holds
    JupyterHub, DockerSpawner and configurable-http-proxy), on the stack's network."""

    label = "plain JupyterHub"
    spki_hash = None  # the stack's certificate

    def __init__(self, stack, workdir):
        self.stack = stack
        self.name = f"{stack.project}-baseline-hub"
        self.token = secrets.token_hex(16)
        self.port = None
        config = Path(workdir) / "baseline_config.py"
        config.write_text(
            BASELINE_CONFIG.format(
                image=SINGLEUSER_IMAGE,
                network=stack.project,
                prefix=f"{stack.project}-base",
                name=self.name,
                token=self.token,
            )
        )
        subprocess.run(
            ["docker", "run", "-d", "--name", self.name, "--network", stack.project,
             "-v", "/var/run/docker.sock:/var/run/docker.sock",
             "-v", f"{config}:/etc/baseline_config.py:ro", "-v", f"{stack.cert_dir}:/certs:ro",
             "-p", "127.0.0.1::8000", "--entrypoint", "jupyterhub", HUB_IMAGE,
             "-f", "/etc/baseline_config.py"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        port = subprocess.run(
            ["docker", "port", self.name, "8000/tcp"],
            check=True, capture_output=True, text=True, timeout=30,
        ).stdout.split()[0].rsplit(":", 1)[1]  # fmt: skip
        self.url = f"https://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = str(stack.ca_file)
        self.http.headers["Authorization"] = f"token {self.token}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if self.http.get(f"{self.url}/hub/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("the baseline hub did not come up")

    def start_and_put(self, user, name, create):
        """Start the user's server (creating the user first when new), wait until it is
        ready, put the notebook: what our two ELN POSTs do."""
        api = f"{self.url}/hub/api/users/{user}"
        if create:
            self.http.post(api, timeout=60).raise_for_status()
        self.http.post(f"{api}/server", timeout=120)
        deadline = time.monotonic() + 300
        while not self.http.get(api, timeout=60).json()["servers"].get("", {}).get("ready"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{user}'s baseline server did not start")
            time.sleep(0.05)
        path = f"{FOLDER}/{name}.ipynb"
        contents = f"{self.url}/user/{user}/api/contents"
        self.http.put(f"{contents}/{FOLDER}", json={"type": "directory"}, timeout=60)
        model = {"type": "notebook", "format": "json", "content": notebook_for(f"{name}.ipynb")}
        self.http.put(f"{contents}/{path}", json=model, timeout=60).raise_for_status()
        return f"{self.url}/hub/login?next=/user/{user}/notebooks/{path}"

    async def journey(self, browser, user, name, create):
        start = time.perf_counter()
        url = await asyncio.to_thread(self.start_and_put, user, name, create)
        await wait_for_cells(browser, url, f"{name}.ipynb", login=user)
        return time.perf_counter() - start


class PeakMemory:
    """The hub container's highest memory use seen by `docker stats` while running."""

    def __init__(self, container):
        self.container = container
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.is_set():
            out = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{json .}}", self.container],
                capture_output=True, text=True, timeout=60, check=False,
            ).stdout  # fmt: skip
            if out.strip():
                used = json.loads(out)["MemUsage"].split("/")[0].strip()
                self.peak = max(self.peak, mebibytes(used))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=120)


def mebibytes(size):
    units = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "B": 1 / 1024**2}
    for unit, factor in units.items():
        if size.endswith(unit):
            return float(size[: -len(unit)]) * factor
    return 0.0


def summary(label, seconds):
    return f"{label:<34} median {statistics.median(seconds):6.2f} s   runs: " + " ".join(
        f"{s:.2f}" for s in seconds
    )


async def benchmark(stack, baseline, runs, concurrent):
    async with async_playwright() as playwright:
        pins = ",".join(filter(None, (stack.spki_hash(), baseline.spki_hash)))
        pin = f"--ignore-certificate-errors-spki-list={pins}"
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=[*CHROMIUM_ARGS, pin]
        )
        # one warm-up each (first Chromium start, first reads of the image's files)
        stack.control.add_user("warmup", "warmup-password")
        await ours(stack, browser, "warmup", "warm-up")
        await baseline.journey(browser, "warmup", "warm-up", create=True)

        cold, cold_base, warm, warm_base = [], [], [], []
        for i in range(runs):
            user = f"cold{i}"
            stack.control.add_user(user, f"{user}-password")
            cold.append(await ours(stack, browser, user, "analysis"))
            cold_base.append(await baseline.journey(browser, user, "analysis", create=True))
        stack.control.add_user("warm", "warm-password")
        await ours(stack, browser, "warm", "first")
        await baseline.journey(browser, "warm", "first", create=True)
        for i in range(runs):
            warm.append(await ours(stack, browser, "warm", f"analysis {i}"))
            warm_base.append(await baseline.journey(browser, "warm", f"a{i}", create=False))

        print(summary("cold (new user), ours", cold))
        print(summary(f"cold (new user), {baseline.label}", cold_base))
        print(f"{'':<34} ratio  {statistics.median(cold) / statistics.median(cold_base):6.2f}")
        print(summary("warm (server running), ours", warm))
        print(summary(f"warm (server running), {baseline.label}", warm_base))
        print(f"{'':<34} ratio  {statistics.median(warm) / statistics.median(warm_base):6.2f}")
        print(f"page loads redone after ERR_NETWORK_CHANGED (Docker on this host): {RELOADS[0]}")

        if not concurrent:
            await browser.close()
            return
        users = [f"crowd{i}" for i in range(concurrent)]
        for user in users:
            stack.control.add_user(user, f"{user}-password")
        with PeakMemory(stack.hub_container_id()) as memory, ThreadPoolExecutor(concurrent) as pool:
            start = time.perf_counter()
            runs = [pool.submit(ours_without_browser, stack, user) for user in users]
            outcomes = [run.exception() or run.result() for run in runs]
            wall = time.perf_counter() - start
        times = sorted(t for t in outcomes if isinstance(t, float))
        errors = [repr(e)[:300] for e in outcomes if not isinstance(e, float)]
        print(
            f"{concurrent} new users at once (notebook page served, no browser): "
            f"{len(times)}/{concurrent} succeeded, {wall:.1f} s"
        )
        if times:
            p95 = times[math.ceil(0.95 * len(times)) - 1]  # nearest rank
            print(
                f"  p50 {statistics.median(times):.2f} s   p95 {p95:.2f} s   max {times[-1]:.2f} s"
            )
        print(f"  hub container peak memory (docker stats, sampled): {memory.peak:.0f} MiB")
        for error in errors[:5]:
            print("  failure:", error)
        await browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--baseline", choices=["plain", "no-internal-ssl"], default="plain")
    args = parser.parse_args()
    images = build_images()
    with tempfile.TemporaryDirectory() as workdir:
        images = images["hub"], images["singleuser"], images["openbis-double"]
        stacks = [ComposeStack(Path(workdir), *images)]
        try:
            stack = stacks[0].up()
            if args.baseline == "plain":
                baseline = Baseline(stack, workdir)
            else:
                second = Path(workdir) / "no-internal-ssl"
                second.mkdir()
                stacks.append(ComposeStack(second, *images, JUPYTERHUB_INTERNAL_SSL="false"))
                baseline = WithoutInternalSSL(stacks[1])
            asyncio.run(benchmark(stack, baseline, args.runs, args.concurrent))
        finally:
            for stack in stacks:
                stack.remove()


if __name__ == "__main__":
    main()
