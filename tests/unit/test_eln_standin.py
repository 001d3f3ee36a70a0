"""The trial's ELN stand-in page (openbis_double/eln.py) generates the ELN's notebook and its
copy of a saved one: its JavaScript, run by node, against the Python port the tests use
(tests/support/eln.py). It lists saved analyses with their HTML and the re-run link."""

import json
import shutil
import subprocess

import pytest

from openbis_double import eln
from openbis_double.protocol import Request
from openbis_double.server import eln_route
from openbis_double.state import State
from tests.support.eln import eln_copied_notebook, eln_notebook, seed_notebook

DATASETS = [
    {"permId": {"permId": "20240115093000000-4"}, "experiment": {"permId": {"permId": "E1"}}},
    {"permId": {"permId": "20240115093000000-5"}, "sample": {"permId": {"permId": "S1"}}},
]
OWNERS = {
    "experiment": {"@type": "as.dto.experiment.Experiment", "identifier": "/LAB/PROJ/EXP1"},
    "sample": {"@type": "as.dto.sample.Sample", "identifier": "/LAB/PROJ/SAMPLE1"},
}


def page_notebook(owner):
    """elnNotebook() of the page's script, run by node (the page's functions only)."""
    call = f"elnNotebook({json.dumps(DATASETS)}, {json.dumps(owner)}, 'analysis 2.ipynb')"
    return run_page_function("// createJupyterNotebookContent", call)


def run_page_function(start, call):
    """``call``'s result, JSON, with the page's script from the comment ``start`` on, by node."""
    script = eln.PAGE.split("<script>")[1].split("</script>")[0]
    functions = script[script.index(start) :]
    call = f"console.log(JSON.stringify({call}));"
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node on this machine (tests/run.sh installs it)")
    result = subprocess.run(
        [node, "-e", functions + call], capture_output=True, text=True, check=True, timeout=30
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["experiment", "sample"])
def test_the_page_sends_the_elns_notebook(kind):
    owner = OWNERS[kind]
    ours = page_notebook(owner)
    python_owner = {"@type": owner["@type"], "identifier": {"identifier": owner["identifier"]}}
    expected = eln_notebook(DATASETS, python_owner, "analysis 2.ipynb")
    assert ours["metadata"] == expected["metadata"]
    assert len(ours["cells"]) == len(expected["cells"])
    differences = [
        (a["source"], b["source"])
        for a, b in zip(ours["cells"], expected["cells"], strict=True)
        if a != b
    ]
    # the history id is random; the trial comments out the token cell, fills the empty
    # "Process your data here" cell with a plot of the first CSV and uploads that plot too
    history, token, process, upload = differences
    assert history[0][0].startswith("resultDatasetHistoryId='")
    assert history[1][0].startswith("resultDatasetHistoryId='")
    assert [line.lstrip("# ") for line in token[0]] == [line.lstrip("# ") for line in token[1]]
    assert process[1] == [] and "axes.figure.savefig(fileName + '.png')" in process[0]
    assert [line for line in upload[0] if line not in upload[1]] == [
        "files = [fileName, fileName + '.html', fileName + '.png'],\n"
    ]
    assert [line for line in upload[1] if line not in upload[0]] == [
        "files = [fileName, fileName + '.html'],\n"
    ]


@pytest.mark.parametrize("keep_history", [False, True])
def test_the_page_copies_a_saved_notebook_as_the_eln_does(keep_history):
    saved = seed_notebook("analysis.ipynb")
    args = f"{json.dumps(saved)}, 'copy 2.ipynb', '20240115093000000-9', {json.dumps(keep_history)}"
    ours = run_page_function("// the cells the ELN rewrites", f"copiedNotebook({args})")
    expected = eln_copied_notebook(saved, "copy 2.ipynb", "20240115093000000-9", keep_history)
    differences = [a for a, b in zip(ours["cells"], expected["cells"], strict=True) if a != b]
    # only the new history id, which is random
    assert [c["metadata"]["code_cell_id"] for c in differences] == ["resultDatasetHistoryId"] * (
        not keep_history
    )
    plain = {"metadata": {}, "cells": [{"cell_type": "code", "metadata": {}, "source": ["1"]}]}
    ours = run_page_function(
        "// the cells the ELN rewrites", f"copiedNotebook({json.dumps(plain)}, 'x', 'p', false)"
    )
    assert ours == plain  # not the ELN's: copied as it is


def get(state, path):
    return eln_route(Request(state, "GET", path, {}, b"", "http://eln"))(
        Request(state, "GET", path, {}, b"", "http://eln")
    )


def test_the_page_lists_saved_analyses_with_their_html_and_the_rerun_link():
    state = State()
    state.eln = eln.ElnSettings("https://jupyter.example.org/", "JDoe")
    state.datasets["20240115093000000-9"] = {
        "permId": "20240115093000000-9", "type": "ANALYSIS_NOTEBOOK", "experiment": None,
        "sample": "/LAB/PROJ/SAMPLE1", "parents": [], "properties": {"$NAME": "run 1"},
        "files": {"analysis.ipynb": b"{}", "analysis.ipynb.html": b"<h1>plot</h1>"},
    }  # fmt: skip
    status, page, _ = get(state, eln.PATH)
    assert status == 200
    page = page.decode()
    files = eln.FILES + "20240115093000000-9/"
    assert f'<a class="analysis-html" href="{files}analysis.ipynb.html"' in page
    assert (
        'href="https://jupyter.example.org/hub/openbis-notebook/open/20240115093000000-9"' in page
    )
    assert 'data-perm-id="20240115093000000-9" data-path="analysis.ipynb">Jupyter</button>' in page
    assert page.count('class="rerun"') == 1  # raw data gets no re-run link
    assert get(state, files + "analysis.ipynb.html") == (
        200, b"<h1>plot</h1>", "text/html; charset=utf-8"
    )  # fmt: skip
    assert get(state, files + "nothing.html")[0] == 404
    state.eln = None
    assert get(state, files + "analysis.ipynb.html")[0] == 404
