"""ELN notebook endpoint benchmark: prints, asserts nothing.

The ELN's two POSTs to /hub/openbis-notebook (test=True with the body TEST, then test=False
with the ELN's notebook) for a user whose server is running, 20 runs over one keep-alive
connection as a browser would. Goal here: median <= 100 ms for the pair. Baseline in the same
run: the two openBIS calls every request has to make to check the token
(isSessionActive + getSessionInformation), sent directly to the openBIS double.

Run: .venv/bin/python -m benchmarks.eln_endpoint   (needs configurable-http-proxy on PATH;
`make test` installs it into .venv/chp/node_modules/.bin)
"""

import json
import statistics
import time

import requests

from tests.support.eln import eln_notebook
from tests.support.hubprocess import hub_with_openbis_double

RUNS = 20
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
DATASET = {
    "permId": {"permId": "20240115093000000-4"},
    "experiment": {"permId": {"permId": "20240115093000000-2"}},
}
OWNER = {"@type": "as.dto.experiment.Experiment", "identifier": {"identifier": "/LAB/PROJ/EXP1"}}


def timed(call):
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def main():
    with hub_with_openbis_double() as (hub, double):
        run(hub, double)


def run(hub, double):
    token = double.control.login("JDoe", "jdoe-password")
    url = f"{hub.url}/hub/openbis-notebook?token={token}&folder=bench&filename=analysis.ipynb"
    browser = requests.Session()

    def sequence():
        test = browser.post(url + "&test=True", data=b"TEST", headers=FORM, timeout=120)
        test.raise_for_status()
        notebook = eln_notebook([DATASET], OWNER, test.json()["fileName"])
        written = browser.post(
            url + "&test=False", data=json.dumps(notebook), headers=FORM, timeout=120
        )
        written.raise_for_status()

    first = timed(sequence)  # creates the user and starts the server
    hub.wait_for_server("JDoe")
    sequence()  # warm-up with the server running

    def token_check():
        double.control.rpc("isSessionActive", [token])
        double.control.rpc("getSessionInformation", [token])

    pairs = [timed(sequence) for _ in range(RUNS)]
    checks = [timed(token_check) for _ in range(RUNS)]
    written = len(list((hub.homes / "JDoe" / "bench").glob("*.ipynb")))
    print(f"ELN notebook endpoint, {RUNS} runs (notebooks written: {written})")
    print(f"  first sequence, server started on the way   {first:8.1f} ms")
    median = statistics.median(pairs)
    print(
        f"  two POSTs, server running (goal <= 100 ms)   median {median:6.1f} ms"
        f"   min {min(pairs):6.1f}   max {max(pairs):6.1f}"
    )
    base = statistics.median(checks)
    print(f"  baseline: one token check at openBIS        median {base:6.1f} ms")
    print(f"  ratio two POSTs / token check               {median / base:6.1f}x")


if __name__ == "__main__":
    main()
