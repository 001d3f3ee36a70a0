"""The trial's ELN stand-in page (openbis_double/eln.py) generates the ELN's notebook: its
JavaScript, run by node, against the Python port the tests use (tests/support/eln.py)."""

import json
import shutil
import subprocess

import pytest

from openbis_double import eln
from tests.support.eln import eln_notebook

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
    script = eln.PAGE.split("<script>")[1].split("</script>")[0]
    functions = script[script.index("// createJupyterNotebookContent") :]
    call = f"console.log(JSON.stringify(elnNotebook({json.dumps(DATASETS)}, "
    call += f"{json.dumps(owner)}, 'analysis 2.ipynb')));"
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
