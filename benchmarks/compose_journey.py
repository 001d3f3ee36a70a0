"""ELN click to notebook on the compose stack, split into hub and browser time: prints, asserts
nothing.

Journey: the ELN's two POSTs to /hub/openbis-notebook, then Chromium opens the ELN's link
(/hub/login?token=…&next=/user/{id}/notebooks/…) until the notebook shows its first cells and
its kernel is idle. Split, from the browser's own Navigation and Resource Timing:

- hub time: the two POSTs (the first one starts a new user's server and waits for it) + until
  the notebook page's HTML has arrived (sign-in, OAuth redirects) + the notebook's contents API
  requests (the notebook itself; not the listings of its checkpoints);
- browser time: the rest (scripts, styles, rendering, the kernel's start).

Scenarios, median of RUNS each:
- cold: a user the hub has never seen (no container, no volume), a new browser profile;
- warm: the same user again, server running, a new notebook each time, a new browser profile;
- returning: as warm, in a persistent Chromium profile that opened a notebook before (its
  cookies and HTTP cache), as a real user's browser.
Goals: cold hub <= 2.5 s, warm hub <= 0.3 s, returning total <= 1.5 s.

Baseline, same run, interleaved run by run: the same journeys on a second stack of the
baseline images (--baseline-tag, default `latest`: main as last built). Ratio = ours / baseline.
Chromium runs in a network namespace of its own (only loopback, where a forwarder in this
process takes the stacks' ports to the host's 127.0.0.1), as a user's browser on another
host: on the host's network it aborts page loads with ERR_NETWORK_CHANGED whenever Docker adds
or removes an interface (tests/support/browser.py), which on a shared engine is several times a
second. A run whose page load is aborted all the same is done again and counted.

Sign-in to JupyterLab served, beside a stock JupyterHub (the outside anchor, stock_hub.py:
JupyterHub + DockerSpawner at our hub image's versions, DummyAuthenticator, our single-user
image), same run, alternated run by run; cold (a new user) and warm (server running), SIGN_IN_RUNS
each. An HTTP client, a new session (a new browser) each run, times from sending the
credentials (ours: the ELN's /hub/login?token=…; stock: its login form) until JupyterLab's HTML
has arrived, through the spawn-pending page as a browser goes. Besides ours: ours with internal
TLS off (what the mutual TLS between hub, proxy and servers costs) and the baseline (before).
Each warm figure is split into the sign-in request (ours: the openBIS token check, the token's
hand-over to the server) and the rest (the OAuth round with the user's server, JupyterLab's
HTML). Ratio = side / stock.

--load: SIGNED_IN users signed in to the hub (cookies, no servers), CONCURRENT of them doing the
cold journey at once up to the notebook's HTML and contents API (an HTTP client, no Chromium:
browsers rendering on this machine's two cores would measure the machine). Prints p50/p95, the
hub container's CPU seconds and peak memory, errors, and where the machine's CPU went (user
servers, Docker engine, hub, the rest) per journey; ours, then the baseline (each stack alone
on the engine while it runs).

Run: .venv/bin/python -m benchmarks.compose_journey [--runs 5] [--baseline-tag latest]
        [--sign-in-runs 10] [--sign-in-only]
     .venv/bin/python -m benchmarks.compose_journey --load [--signed-in 60] [--concurrent 30]
(builds this checkout's images when missing, like the tests; a few minutes)
"""

import argparse
import asyncio
import ctypes
import html
import json
import math
import os
import re
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import docker
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from tests.support.browser import CHROMIUM_ARGS, KERNEL_IDLE
from tests.support.compose_stack import ELN_ORIGIN, ComposeStack
from tests.support.eln import eln_new_notebook, eln_notebook
from tests.support.images import build_images

from .stock_hub import StockHub

DATASET = {
    "permId": {"permId": "20240115093000000-4"},
    "experiment": {"permId": {"permId": "20240115093000000-2"}},
}
OWNER = {"@type": "as.dto.experiment.Experiment", "identifier": {"identifier": "/LAB/PROJ/EXP1"}}
FOLDER = "bench"
TIMEOUT_MS = 300_000
# the notebook is there: its title, the cell with its file name, an idle kernel
READY = (
    """name => {
  const heading = [...document.querySelectorAll('.jp-MarkdownCell h1')]
    .some(h => h.textContent.includes('Jupyter notebook title'));
  const cell = [...document.querySelectorAll('.jp-CodeCell .cm-content')]
    .some(c => c.textContent.includes(`fileName='${name}'`));
  const idle = document.querySelector("""
    + json.dumps(KERNEL_IDLE)
    + """);
  return heading && cell && idle !== null;
}"""
)
# seconds from the navigation's start until the page's HTML had arrived, and the contents
# API requests for the notebook (from sending each to its answer's end: not the time a request
# waits for one of the browser's connections); not Notebook 7's listings of the notebook's
# checkpoints (…/checkpoints, for its "Last Checkpoint" line, several per page load)
TIMING = """name => {
  const nav = performance.getEntriesByType('navigation')[0];
  const contents = performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/api/contents/') && e.name.includes(encodeURIComponent(name))
                 && !e.name.includes('/checkpoints'));
  const sent = e => e.requestStart || e.startTime;
  return {html: nav.responseEnd / 1000,
          contents: contents.reduce((sum, e) => sum + e.responseEnd - sent(e), 0) / 1000};
}"""


def notebook_for(file_name):
    return eln_notebook([DATASET], OWNER, file_name)


@dataclass
class Journey:
    posts: float  # the ELN's two POSTs
    html: float  # the link opened until the notebook page's HTML arrived
    contents: float  # the notebook's contents API requests
    browser: float

    @property
    def hub(self):
        return self.posts + self.html + self.contents

    @property
    def total(self):
        return self.hub + self.browser


class NetworkChanged(Exception):
    """Chromium aborted a request of the page (a host network change): the run is void."""


async def journey(stack, context, user, name):
    """One ELN journey of ``user`` in a browser ``context``; its hub and browser seconds."""
    token = await asyncio.to_thread(stack.login, user)
    start = time.perf_counter()
    written, link = await asyncio.to_thread(
        eln_new_notebook, stack, token, user, FOLDER, name, notebook_for, ELN_ORIGIN
    )
    posts = time.perf_counter() - start
    aborted = []
    page = await context.new_page()
    page.on(
        "requestfailed",
        lambda r: aborted.append(r.url) if "ERR_NETWORK_CHANGED" in (r.failure or "") else None,
    )
    try:
        opened = time.perf_counter()
        await page.goto(link, wait_until="commit", timeout=TIMEOUT_MS)
        file_name = written["fileName"]
        while True:
            if aborted:
                raise NetworkChanged(aborted[0])
            try:
                await page.wait_for_function(READY, arg=file_name, timeout=1000)
                break
            except PlaywrightTimeout as e:  # not yet: look for aborted requests, wait again
                if time.perf_counter() - opened > TIMEOUT_MS / 1000:
                    raise TimeoutError(f"{user}'s notebook did not show") from e
        seen = time.perf_counter() - opened
        timing = await page.evaluate(TIMING, file_name)
    finally:
        await page.close()
    browser = seen - timing["html"] - timing["contents"]
    return Journey(posts, timing["html"], timing["contents"], browser)


async def journey_again(stack, context, user, name, redone):
    """``journey``, done again (with a fresh user when it was a new one) when Chromium
    aborted the page's load; ``redone`` counts those runs."""
    for attempt in range(5):
        run_user = user if attempt == 0 or not user.startswith("cold") else f"{user}r{attempt}"
        if run_user != user:
            stack.control.add_user(run_user, f"{run_user}-password")
        try:
            return await journey(stack, context, run_user, f"{name}-{attempt}")
        except NetworkChanged:
            redone.append(run_user)
    raise RuntimeError("five page loads in a row aborted by host network changes")


def shut_down_kernels(stack, user, token):
    """The notebooks' kernels of a warm user go after each run (a new notebook each time)."""
    sessions = f"{stack.url}/user/{user}/api/sessions"
    http = stack.session()
    http.headers["Authorization"] = f"token {token}"
    for session in http.get(sessions, timeout=60).json():
        http.delete(f"{sessions}/{session['id']}", timeout=60)


class Side:
    """One stack (ours or the baseline) with its browsers and results."""

    def __init__(self, label, stack, workdir):
        self.label = label
        self.stack = stack
        self.profile = Path(workdir) / f"profile-{label}"
        self.results = {"cold": [], "warm": [], "returning": []}
        self.redone = []

    async def open(self, playwright, browser, chromium):
        self.browser = browser
        self.returning_browser = await playwright.chromium.launch_persistent_context(
            str(self.profile),
            executable_path=chromium,
            args=[*CHROMIUM_ARGS, pin(self.stack)],
        )
        self.stack.control.add_user("warm", "warm-password")
        self.warm_token = await asyncio.to_thread(self.stack.api_token, "warm")
        # warm-ups: the first container of the image, the returning profile's first visit
        self.stack.control.add_user("warmup", "warmup-password")
        await self.fresh("warmup", "first")
        await self.fresh("warm", "first")
        await journey_again(self.stack, self.returning_browser, "warm", "visit", self.redone)
        await asyncio.to_thread(shut_down_kernels, self.stack, "warm", self.warm_token)

    async def fresh(self, user, name):
        context = await self.browser.new_context()
        try:
            return await journey_again(self.stack, context, user, name, self.redone)
        finally:
            await context.close()

    async def cold(self, i):
        user = f"cold{i}"
        self.stack.control.add_user(user, f"{user}-password")
        self.results["cold"].append(await self.fresh(user, "a"))

    async def warm(self, i):
        self.results["warm"].append(await self.fresh("warm", f"w{i}"))
        await asyncio.to_thread(shut_down_kernels, self.stack, "warm", self.warm_token)

    async def returning(self, i):
        run = await journey_again(self.stack, self.returning_browser, "warm", f"r{i}", self.redone)
        self.results["returning"].append(run)
        await asyncio.to_thread(shut_down_kernels, self.stack, "warm", self.warm_token)


class OwnNetwork:
    """A network namespace with only loopback, for Chromium (``executable``), where the
    stacks' ports on 127.0.0.1 lead to the same ports on the host's 127.0.0.1."""

    CLONE_NEWNET = 0x40000000

    def __init__(self, workdir, ports):
        self.name = f"journey-{uuid.uuid4().hex[:8]}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        run_in = ["nsenter", f"--net=/run/netns/{self.name}"]
        subprocess.run([*run_in, "ip", "link", "set", "lo", "up"], check=True)
        self.executable = Path(workdir) / "chromium-own-network"
        self.executable.write_text(f'#!/bin/sh\nexec {" ".join(run_in)} /usr/bin/chromium "$@"\n')
        self.executable.chmod(0o755)
        listeners = [self._listener(port) for port in ports]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        for listener in listeners:
            asyncio.run_coroutine_threadsafe(self._serve(listener), self.loop).result()

    def _listener(self, port):
        """A listening socket made inside the namespace (by a thread that enters it)."""
        made = []

        def enter_and_listen():
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            if libc.setns(fd, self.CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            os.close(fd)
            made.append(socket.create_server(("127.0.0.1", port), backlog=128))

        thread = threading.Thread(target=enter_and_listen)
        thread.start()
        thread.join()
        return made[0]

    async def _serve(self, listener):
        port = listener.getsockname()[1]

        async def forward(reader, writer):
            try:
                host_reader, host_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, host_writer), pipe(host_reader, writer))

        await asyncio.start_server(forward, sock=listener)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        subprocess.run(["ip", "netns", "delete", self.name], check=False)


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()


def pin(*stacks):
    """Chromium trusts the stacks' throw-away CAs, and nothing else beyond the usual."""
    return "--ignore-certificate-errors-spki-list=" + ",".join(s.spki_hash() for s in stacks)


def median(runs, part):
    return statistics.median(getattr(run, part) for run in runs)


def report(ours, base, runs):
    print(f"ELN journey, median of {runs} runs (seconds); baseline: {base.label}")
    print(f"{'':<28}{'hub':>8}{'browser':>9}{'total':>8}   hub = POSTs + page HTML + contents")
    goals = {"cold": "hub <= 2.5", "warm": "hub <= 0.3", "returning": "total <= 1.5"}
    for scenario, goal in goals.items():
        for side in (ours, base):
            results = side.results[scenario]
            parts = [median(results, p) for p in ("hub", "browser", "total")]
            print(
                f"{scenario + ', ' + side.label:<28}"
                + "".join(f"{p:>8.2f}" if i != 1 else f"{p:>9.2f}" for i, p in enumerate(parts))
                + "   "
                + " + ".join(f"{median(results, p):.2f}" for p in ("posts", "html", "contents"))
            )
        ratios = [
            median(ours.results[scenario], p) / median(base.results[scenario], p)
            for p in ("hub", "browser", "total")
        ]
        print(
            f"{'  ratio ours/baseline':<28}{ratios[0]:>8.2f}{ratios[1]:>9.2f}{ratios[2]:>8.2f}"
            f"   goal: {goal} s"
        )
    for side in (ours, base):
        if side.redone:
            print(f"{side.label}: {len(side.redone)} run(s) redone after ERR_NETWORK_CHANGED")


async def journeys(sides, runs, chromium):
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium,
            args=[*CHROMIUM_ARGS, pin(*(side.stack for side in sides))],
        )
        for side in sides:
            await side.open(playwright, browser, chromium)
        for step in ("cold", "warm", "returning"):
            for i in range(runs):
                for side in sides:
                    await getattr(side, step)(i)
        for side in sides:
            await side.returning_browser.close()
        await browser.close()
    report(*sides, runs)


# --- sign-in to JupyterLab: ours beside a stock JupyterHub ------------------------------------
# JupyterHub's spawn-pending page: the browser follows this event stream until the server is
# ready, then reloads the page (which redirects to the server)
PROGRESS = re.compile(r'new EventSource\("([^"]+)"\)')


@dataclass
class SignIn:
    request: float  # the sign-in request: credentials checked, the hub's cookie set
    total: float  # from sending the credentials until JupyterLab's HTML had arrived

    @property
    def rest(self):
        """After the sign-in request: the redirects, the start of a new server (cold), the
        OAuth round with the user's server, JupyterLab's HTML."""
        return self.total - self.request


class SignInSide:
    """A hub whose sign-in to JupyterLab is timed from an HTTP client: a new session each run
    (a new browser), the sign-in sent, redirects followed (through the spawn-pending page as
    the browser does) until JupyterLab's HTML has arrived. ``prepare`` does what comes before
    the user sends their credentials (untimed); ``submit`` sends them."""

    def __init__(self, label, hub):
        self.label = label
        self.hub = hub
        self.results = {"cold": [], "warm": []}

    def run(self, user, scenario):
        http = self.hub.session()
        submit = self.prepare(http, user, scenario)
        start = time.perf_counter()
        answer = submit()
        request = answer.history[0].elapsed.total_seconds() if answer.history else None
        while urlsplit(answer.url).path.startswith("/hub/spawn-pending/"):
            answer = spawned(http, answer)
        total = time.perf_counter() - start
        answer.raise_for_status()
        if urlsplit(answer.url).path != f"/user/{user}/lab":
            raise RuntimeError(f"{self.label}: {user} ended at {answer.url}")
        if scenario in self.results:
            self.results[scenario].append(SignIn(request, total))


class OursSignIn(SignInSide):
    """Our stack: the ELN's link, /hub/login?token=…&next=/user/{id}/lab."""

    def new_user(self, user):
        self.hub.control.add_user(user, f"{user}-password")

    def prepare(self, http, user, scenario):
        token = self.hub.login(user)  # the user's openBIS session, there before
        url = f"{self.hub.url}/hub/login"
        params = {"token": token, "next": f"/user/{user}/lab"}
        return lambda: http.get(url, params=params, timeout=330)


class StockSignIn(SignInSide):
    """The stock hub: its login form (loaded before, untimed) sent with a user name and
    password. ``next``: JupyterLab when the server runs; when not, /hub/spawn first (a stock hub
    shows a "Launch server" button at JupyterLab's address of a stopped server)."""

    def new_user(self, user):
        pass  # DummyAuthenticator: every name signs in

    def prepare(self, http, user, scenario):
        lab = f"/user/{user}/lab"
        target = lab if scenario == "warm" else f"/hub/spawn/{user}?next={lab}"
        url = f"{self.hub.url}/hub/login"
        http.get(url, params={"next": target}, timeout=60).raise_for_status()
        form = {"username": user, "password": "any", "_xsrf": http.cookies["_xsrf"]}
        return lambda: http.post(url, params={"next": target}, data=form, timeout=330)


def spawned(http, page):
    """The spawn-pending ``page`` as a browser has it: its progress events until the server is
    ready (or failed), then the page reloaded."""
    found = PROGRESS.search(page.text)
    if not found:
        raise RuntimeError(f"no progress stream on {page.url}")
    with http.get(urljoin(page.url, html.unescape(found.group(1))), stream=True, timeout=330) as s:
        for line in s.iter_lines():
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                if event.get("ready") or event.get("failed"):
                    break
    return http.get(page.url, timeout=330)


def sign_ins(sides, runs):
    """Cold (a new user) and warm (the same user, server running) sign-ins, side after side
    in each run; then the report, ratios against the first side (the stock hub)."""
    load = os.getloadavg()[0]
    for side in sides:
        side.new_user("signin")
        side.run("signin", "first")  # starts the warm user's server; warms the side up
    for i in range(runs):
        for side in sides:
            side.new_user(f"signin-cold{i}")
            side.run(f"signin-cold{i}", "cold")
    for _ in range(runs):
        for side in sides:
            side.run("signin", "warm")
    report_sign_ins(sides, runs, (load, os.getloadavg()[0]))


def report_sign_ins(sides, runs, load):
    anchor = sides[0]
    print(
        f"\nSign-in to JupyterLab served (an HTTP client, a new session each), median of {runs}"
        f" runs (seconds); ratio = side / {anchor.label}; load average {load[0]:.1f} at the"
        f" start, {load[1]:.1f} at the end"
    )
    print(f"{'':<34}{'cold':>7}{'ratio':>7}{'warm':>8}{'ratio':>7}   warm = sign-in request + rest")
    for side in sides:
        cold, warm = side.results["cold"], side.results["warm"]
        figures = ""
        for scenario in ("cold", "warm"):
            here = median(side.results[scenario], "total")
            figures += f"{here:>7.3f}" if scenario == "cold" else f"{here:>8.3f}"
            figures += f"{here / median(anchor.results[scenario], 'total'):>7.2f}"
        print(
            f"{side.label:<34}{figures}   "
            f"{median(warm, 'request'):.3f} + {median(warm, 'rest'):.3f}"
            f"   (cold: {median(cold, 'request'):.3f} + {median(cold, 'rest'):.3f})"
        )


# --- the load run ----------------------------------------------------------------------------
def signed_in(stack, user):
    """A browser-like HTTP session of ``user`` signed in to the hub with an openBIS session."""
    session = stack.session()
    answer = session.get(
        f"{stack.url}/hub/login", params={"token": stack.login(user), "next": "/hub/home"}
    )
    answer.raise_for_status()
    return session


def hub_journey(stack, user, session):
    """The journey up to what the browser would render: the ELN's two POSTs, its link followed
    (sign-in, OAuth with the user's server) to the notebook's HTML, the contents API."""
    token = stack.login(user)
    start = time.perf_counter()
    written, link = eln_new_notebook(stack, token, user, FOLDER, "a", notebook_for, ELN_ORIGIN)
    page = session.get(link, timeout=330)
    page.raise_for_status()
    if not page.url.startswith(f"{stack.url}/user/{user}/notebooks/"):
        raise RuntimeError(f"{user} ended at {page.url}")
    contents = f"{stack.url}/user/{user}/api/contents/{FOLDER}/{written['fileName']}"
    session.get(contents, params={"type": "notebook", "content": 1}, timeout=60).raise_for_status()
    return time.perf_counter() - start


class HubUsage:
    """The hub container's CPU seconds (cgroup counter) and peak memory (sampled) while the
    block runs."""

    def __init__(self, container):
        self.api = docker.from_env().api
        self.container = container
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _stats(self):
        stats = self.api.stats(self.container, stream=False)
        memory = stats["memory_stats"]
        # what `docker stats` shows: usage without the page cache
        cache = memory.get("stats", {}).get("total_inactive_file", 0)
        self.peak = max(self.peak, (memory.get("usage", 0) - cache) / 2**20)
        return cpu_seconds(stats)

    def _sample(self):
        while not self._stop.wait(0.5):
            self._stats()

    def __enter__(self):
        self.cpu_start = self._stats()
        self.start = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=120)
        self.wall = time.perf_counter() - self.start
        self.cpu = self._stats() - self.cpu_start


class MachineUsage:
    """Where the machine's CPU went while the block runs: all of it (/proc/stat), the Docker
    engine (dockerd, containerd and its shims, with the runc runs they waited for) and, read at
    the end, the CPU of ``containers()`` (the users' servers)."""

    # as /proc/<pid>/stat names them: cut to 15 characters (containerd-shim-runc-v2 too)
    ENGINE = ("dockerd", "containerd", "containerd-shim")

    def __init__(self, containers):
        self.api = docker.from_env().api
        self.containers = containers
        self.tick = os.sysconf("SC_CLK_TCK")

    def _busy(self):
        fields = [int(n) for n in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return (sum(fields) - fields[3] - fields[4]) / self.tick  # not idle, not iowait

    def _engine(self):
        """CPU seconds of the engine's processes, each with its waited-for children."""
        total = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except OSError:
                continue
            name = text[text.index("(") + 1 : text.rindex(")")]
            if name in self.ENGINE:
                times = text[text.rindex(")") + 2 :].split()[11:15]  # utime stime cutime cstime
                total[stat.parent.name] = sum(int(t) for t in times) / self.tick
        return total

    def __enter__(self):
        self.busy, self.engine = self._busy(), self._engine()
        return self

    def __exit__(self, *exc):
        self.busy = self._busy() - self.busy
        engine = self._engine()
        self.engine = sum(cpu - self.engine.get(pid, 0.0) for pid, cpu in engine.items())
        self.servers = sum(
            cpu_seconds(self.api.stats(c, stream=False, one_shot=True)) for c in self.containers()
        )


def cpu_seconds(stats):
    """A container's CPU seconds so far, from the engine's stats of it."""
    return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


def load_run(stack, label, signed, concurrent):
    users = [f"crowd{i}" for i in range(signed)]
    for user in users:
        stack.control.add_user(user, f"{user}-password")
    with ThreadPoolExecutor(16) as pool:
        sessions = list(pool.map(lambda u: signed_in(stack, u), users))
    openers = list(zip(users, sessions, strict=True))[:concurrent]

    def servers():
        found = (stack.user_container(user) for user, _ in openers)
        return [container["Id"] for container in found if container]

    with (
        MachineUsage(servers) as machine,
        HubUsage(stack.hub_container_id()) as usage,
        ThreadPoolExecutor(concurrent) as pool,
    ):
        runs = [pool.submit(hub_journey, stack, user, session) for user, session in openers]
        outcomes = [run.exception() or run.result() for run in runs]
    title = f"{label}: {signed} signed in, {concurrent} open an ELN notebook at once"
    times = print_outcomes(title, outcomes, usage.wall, "(goal <= 15)")
    print(
        f"  hub container: {usage.cpu:.1f} CPU s ({usage.cpu / usage.wall:.2f} cores), "
        f"peak memory {usage.peak:.0f} MiB"
    )
    rest = machine.busy - machine.servers - machine.engine - usage.cpu
    print(
        f"  the machine: {machine.busy:.1f} CPU s ({machine.busy / usage.wall:.2f} of "
        f"{os.cpu_count()} cores), {machine.busy / concurrent:.2f} per journey: user servers "
        f"{machine.servers / concurrent:.2f}, Docker engine {machine.engine / concurrent:.2f}, "
        f"hub {usage.cpu / concurrent:.2f}, the rest {rest / concurrent:.2f} (proxy, openBIS "
        "double, this client)"
    )
    return times


def print_outcomes(title, outcomes, wall, goal=""):
    """Concurrent journeys' summary: successes, p50/p95 of their times, the first failures.
    ``outcomes``: each journey's seconds, or the exception that ended it."""
    times = sorted(t for t in outcomes if isinstance(t, float))
    errors = [repr(e)[:300] for e in outcomes if not isinstance(e, float)]
    print(f"{title}: {len(times)}/{len(outcomes)} succeeded in {wall:.1f} s")
    if times:
        p95 = times[math.ceil(0.95 * len(times)) - 1]  # nearest rank
        print(f"  journey p50 {statistics.median(times):.2f} s   p95 {p95:.2f} s   {goal}")
    for error in errors[:5]:
        print("  failure:", error)
    return times


# --- stacks --------------------------------------------------------------------------------------
def images_of(tag):
    names = ("hub", "singleuser", "openbis-double")
    return [f"openbis-jupyterhub/{name}:{tag}" for name in names]


def image_exists(name):
    return (
        subprocess.run(
            ["docker", "image", "inspect", name], capture_output=True, check=False
        ).returncode
        == 0
    )


def new_stack(workdir, label, images, **settings):
    folder = Path(workdir) / label.split()[0]
    folder.mkdir()
    return ComposeStack(folder, *images, **settings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-tag", default="latest")
    parser.add_argument("--sign-in-runs", type=int, default=10)
    parser.add_argument(
        "--sign-in-only", action="store_true", help="only the sign-in runs (no browser)"
    )
    parser.add_argument("--load", action="store_true", help="the load run instead")
    parser.add_argument("--signed-in", type=int, default=60)
    parser.add_argument("--concurrent", type=int, default=30)
    args = parser.parse_args()
    images = build_images()
    ours_images = [images["hub"], images["singleuser"], images["openbis-double"]]
    base_images = images_of(args.baseline_tag)
    missing = [name for name in base_images if not image_exists(name)]
    if missing:
        parser.error(f"baseline images missing: {', '.join(missing)}")
    labels = ("ours", f"baseline ({args.baseline_tag})")
    with tempfile.TemporaryDirectory() as workdir:
        stacks = []
        try:
            if args.load:
                # one stack at a time: the other's 30 servers would load the engine
                for label, names in zip(labels, (ours_images, base_images), strict=True):
                    stack = new_stack(workdir, label, names)
                    stacks.append(stack)
                    stack.up()
                    load_run(stack, label, args.signed_in, args.concurrent)
                    stacks.pop().remove()
                return
            sides = []
            for label, names in zip(labels, (ours_images, base_images), strict=True):
                stack = new_stack(workdir, label, names)
                stacks.append(stack)
                stack.up()
                sides.append(Side(label, stack, workdir))
            # the sign-in runs' other two hubs: ours without internal TLS, and the stock one
            tls_off = new_stack(workdir, "tls-off", ours_images, JUPYTERHUB_INTERNAL_SSL="false")
            stacks.append(tls_off)
            tls_off.up()
            stock = StockHub(workdir, images["hub"], images["singleuser"])
            stacks.append(stock)
            stock.up()
            if not args.sign_in_only:
                network = OwnNetwork(workdir, [side.stack.port for side in sides])
                try:
                    asyncio.run(journeys(sides, args.runs, str(network.executable)))
                finally:
                    network.close()
            sign_in_sides = [
                StockSignIn("stock JupyterHub + DockerSpawner", stock),
                OursSignIn("ours", sides[0].stack),
                OursSignIn("ours, internal TLS off", tls_off),
                OursSignIn(sides[1].label, sides[1].stack),
            ]
            sign_ins(sign_in_sides, args.sign_in_runs)
        except BaseException:
            for stack in stacks:
                print(f"--- {stack.project}: the hub's log\n{stack.logs()[-6000:]}")
            raise
        finally:
            for stack in stacks:
                stack.remove()


if __name__ == "__main__":
    main()
