"""Sign-in benchmark: prints, asserts nothing.

1. Token sign-in to the first byte of the user's page (server already running), 20 runs,
   against the same page opened with an existing hub cookie (baseline, same run).
2. 50 concurrent token sign-ins for 50 different users: successes, wall time, p50/p95.

Run: .venv/bin/python -m benchmarks.auth   (needs configurable-http-proxy on PATH;
`make test` installs it into .venv/chp/node_modules/.bin)
"""

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.hubprocess import hub_with_openbis_double

RUNS = 20
CONCURRENT_USERS = 50


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name, seconds):
    ms = [s * 1000 for s in seconds]
    print(f"{name:<48} median {statistics.median(ms):7.1f} ms   p95 {percentile(ms, 0.95):7.1f} ms")
    return statistics.median(ms)


def first_byte(session, url):
    """Seconds until the final page's headers arrive, following redirects."""
    start = time.perf_counter()
    with session.get(url, stream=True, timeout=30) as r:
        r.raise_for_status()
        return time.perf_counter() - start


def main():
    with hub_with_openbis_double() as (hub, double):
        run(hub, double)


def run(hub, double):
    page = f"{hub.url}/user/JDoe/lab"
    signed_in = requests.Session()
    token = double.control.login("JDoe", "jdoe-password")
    signed_in.get(f"{hub.url}/hub/login?token={token}&next=/user/JDoe/lab", timeout=30)
    hub.wait_for_server("JDoe", timeout=120)
    first_byte(signed_in, page)  # warm up

    baseline, eln = [], []
    for _ in range(RUNS):
        baseline.append(first_byte(signed_in, page))
        token = double.control.login("JDoe", "jdoe-password")
        link = f"{hub.url}/hub/login?token={token}&next=%2Fuser%2FJDoe%2Flab"
        eln.append(first_byte(requests.Session(), link))
    print(f"Token sign-in, server running ({RUNS} runs each)")
    base = summary("  page with an existing cookie (baseline)", baseline)
    full = summary("  ELN link with a token to the same page", eln)
    overhead = full - base
    print(f"  sign-in overhead: {overhead:.1f} ms median (goal <= 150 ms), ratio {full / base:.2f}")

    users = [f"bench{i:02d}" for i in range(CONCURRENT_USERS)]
    tokens = []
    for user in users:
        double.control.add_user(user, f"{user}-pw")
        tokens.append(double.control.login(user, f"{user}-pw"))

    def sign_in(token):
        start = time.perf_counter()
        r = requests.get(f"{hub.url}/hub/login?token={token}", allow_redirects=False, timeout=60)
        ok = r.status_code == 302 and "/hub/login" not in r.headers.get("Location", "")
        return ok, time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENT_USERS) as pool:
        results = list(pool.map(sign_in, tokens))
    wall = time.perf_counter() - start
    print(f"{CONCURRENT_USERS} concurrent token sign-ins, {CONCURRENT_USERS} different users")
    print(f"  succeeded: {sum(ok for ok, _ in results)}/{CONCURRENT_USERS}, wall {wall:.2f} s")
    summary("  per sign-in", [t for _, t in results])


if __name__ == "__main__":
    main()
