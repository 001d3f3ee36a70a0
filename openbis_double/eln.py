"""A stand-in for the openBIS ELN's pages, for the trial (`make trial`): the seeded entities
with the ELN's own buttons, "Jupyter Workspace" and "New Jupyter Notebook".

The page runs what the real ELN runs (the ELN's ``js/util/JupyterUtil.js``): the sign-in link
``{jupyterEndpoint}hub/login?token=T``, and for a new notebook the two POSTs to
``{jupyterEndpoint}hub/openbis-notebook`` (the test POST with the body ``TEST``, then the
notebook), then ``hub/login?token=T&next=…``. The notebook is the ELN's, cell for cell as
``tests/support/eln.py`` has it, with three trial changes: the "Process your data here" cell
plots the first CSV, the upload takes that plot too, and the optional token cell is commented
out so that *Run All* goes through.

Each page load signs the demo user in (a new session token), as the ELN page of a signed-in
user has one. Never for production: it is part of the test double.
"""

import html
import json
from dataclasses import dataclass

from . import seed
from .protocol import Request

PATH = "/openbis/webapp/eln-lims/"


@dataclass(frozen=True)
class ElnSettings:
    jupyter_endpoint: str  # the ELN profile's jupyterEndpoint, with a trailing slash
    user: str  # the demo user the page is signed in as


def handle(request: Request):
    settings = request.state.eln
    if settings is None:
        return 404, b"the ELN stand-in is off (python -m openbis_double --eln-port)", "text/plain"
    token = request.state.login(settings.user, request.state.users[settings.user])
    with request.state.lock:
        datasets = sorted(request.state.datasets.values(), key=lambda d: d["permId"])
    page = PAGE.replace("%%ROWS%%", "\n".join(_dataset_row(d) for d in datasets))
    config = {
        "token": token,
        "user": settings.user,
        "jupyterEndpoint": settings.jupyter_endpoint,
        "integrationEndpoint": settings.jupyter_endpoint + "hub/openbis-notebook",
        "owners": OWNERS,
    }
    # JSON inside <script>: "</" must not close the element
    page = page.replace("%%CONFIG%%", json.dumps(config).replace("</", "<\\/"))
    page = page.replace("%%USER%%", html.escape(settings.user))
    return 200, page.encode(), "text/html; charset=utf-8"


# what the ELN knows of the datasets' owners (permIds and identifiers of the seed)
OWNERS = {
    seed.EXPERIMENT: {
        "@type": "as.dto.experiment.Experiment",
        "permId": seed.EXPERIMENT_PERM_ID,
        "identifier": seed.EXPERIMENT,
    },
    seed.SAMPLE: {
        "@type": "as.dto.sample.Sample",
        "permId": seed.SAMPLE_PERM_ID,
        "identifier": seed.SAMPLE,
    },
}


def _dataset_row(dataset):
    owner = dataset["sample"] or dataset["experiment"]
    kind = "sample" if dataset["sample"] else "experiment"
    files = ", ".join(name.rsplit("/", 1)[-1] for name in dataset["files"])
    attributes = {
        "value": dataset["permId"],
        "data-owner": owner,
        "data-owner-kind": kind,
        "data-owner-perm-id": OWNERS.get(owner, {}).get("permId", ""),
    }
    checkbox = " ".join(f'{k}="{html.escape(str(v))}"' for k, v in attributes.items())
    cells = [
        f'<input type="checkbox" name="dataset" {checkbox}>',
        html.escape(dataset["permId"]),
        html.escape(dataset["type"]),
        html.escape(dataset["properties"].get("$NAME", "")),
        html.escape(owner),
        html.escape(files),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>openBIS ELN (trial stand-in)</title>
<style>
 body { font-family: sans-serif; margin: 0; color: #222; }
 .banner { background: #fff3cd; border-bottom: 1px solid #e0c97f; padding: .6em 1em; }
 main { padding: 1em 2em; }
 table { border-collapse: collapse; margin: .5em 0 1em; }
 td, th { border: 1px solid #ccc; padding: .3em .6em; text-align: left; }
 fieldset { border: 1px solid #ccc; margin: 1em 0; max-width: 46em; }
 label { display: block; margin: .3em 0; }
 button { font-size: 1em; padding: .4em 1em; margin-right: .5em; }
 #status { margin-top: 1em; white-space: pre-wrap; }
</style></head>
<body>
<div class="banner" role="note"><strong>Trial.</strong> This page stands in for the openBIS ELN;
it is served by the openBIS test double, which keeps nothing. Signed in as
<strong>%%USER%%</strong>. <code>make trial-down</code> removes the whole trial.</div>
<main>
<h1>Lab notebook</h1>
<p>Space <strong>LAB</strong> &rsaquo; Project <strong>PROJ</strong> &rsaquo;
 Collection <strong>EXP1</strong> (with Object <strong>SAMPLE1</strong>)</p>
<p><button id="workspace" type="button">Jupyter Workspace</button>
 (Utilities &rsaquo; Jupyter Workspace)</p>
<h2>Datasets</h2>
<table>
 <thead><tr><th>pick</th><th>permId</th><th>type</th><th>name</th><th>owner</th><th>files</th>
 </tr></thead>
 <tbody>
%%ROWS%%
 </tbody>
</table>
<fieldset><legend>More&hellip; &rsaquo; New Jupyter Notebook</legend>
 <label>Owner of the result
  <select id="owner">
   <option value="/LAB/PROJ/EXP1">Collection /LAB/PROJ/EXP1</option>
   <option value="/LAB/PROJ/SAMPLE1">Object /LAB/PROJ/SAMPLE1</option>
  </select></label>
 <label>Folder <input id="folder" value="trial"></label>
 <label>Notebook name <input id="name" value="analysis"></label>
 <button id="new-notebook" type="button">New Jupyter Notebook</button>
</fieldset>
<div id="status" role="status"></div>
</main>
<script>
const CONFIG = %%CONFIG%%;
const FORM = "application/x-www-form-urlencoded; charset=UTF-8";  // what jQuery's $.ajax sends

function say(text) { document.getElementById("status").textContent = text; }

// Utilities > Jupyter Workspace
document.getElementById("workspace").onclick = () => {
  window.open(CONFIG.jupyterEndpoint + "hub/login?token=" + CONFIG.token);
};

// More... > New Jupyter Notebook: the ELN's request sequence
document.getElementById("new-notebook").onclick = async () => {
  const picked = [...document.querySelectorAll("input[name=dataset]:checked")];
  const folder = document.getElementById("folder").value;
  const name = document.getElementById("name").value + ".ipynb";
  const owner = CONFIG.owners[document.getElementById("owner").value];
  // opened now, while the click counts: browsers block windows opened after awaits
  const tab = window.open("", "_blank");
  // folder and file name go into the URL unencoded, as the ELN puts them there
  const url = CONFIG.integrationEndpoint + "?token=" + CONFIG.token + "&folder=" + folder
    + "&filename=" + name;
  try {
    say("Asking Jupyter for a free file name...");
    const test = await post(url + "&test=True", "TEST");
    const datasets = picked.map((box) => ({
      permId: {permId: box.value},
      [box.dataset.ownerKind]: {permId: {permId: box.dataset.ownerPermId}},
    }));
    const notebook = elnNotebook(datasets, owner, test.fileName);
    say("Writing " + folder + "/" + test.fileName + " (your server starts if needed)...");
    const written = await post(url + "&test=False", JSON.stringify(notebook));
    const next = "/user/" + CONFIG.user + "/notebooks/" + folder + "/" + written.fileName;
    const link = CONFIG.jupyterEndpoint + "hub/login?token=" + CONFIG.token + "&next="
      + encodeURIComponent(next);
    say("Opened " + folder + "/" + written.fileName + " in a new tab.");
    if (tab) { tab.location = link; } else { window.location = link; }
  } catch (error) {
    if (tab) { tab.close(); }
    say("error: " + error.message);
  }
};

async function post(url, body) {
  const response = await fetch(url, {method: "POST", body: body, headers: {"Content-Type": FORM}});
  const text = await response.text();
  if (!response.ok) { throw new Error(text); }
  return JSON.parse(text);
}

// createJupyterNotebookContent of the ELN's JupyterUtil.js (tests/support/eln.py has the same)
function markdown(text) { return {cell_type: "markdown", metadata: {}, source: [text]}; }
function code(source, id) {
  return {cell_type: "code", execution_count: null,
          metadata: {collapsed: false, code_cell_id: id === undefined ? null : id},
          outputs: [], source: source};
}
function elnNotebook(datasets, owner, fileName) {
  const ids = datasets.map((ds) => ds.permId.permId);
  const c = [];
  c.push(markdown("# Jupyter notebook title, modify me!\\n"));
  c.push(markdown("Variables used by other parts of this autogenerated notebook - "
    + "Don't modify if you don't know what you are doing!)"));
  c.push(markdown("Description : fileName variable, indicates the name of the document to save"));
  c.push(code(["fileName='" + fileName + "'"], "fileName"));
  c.push(markdown("Description : resultDatasetParents variable, indicates the permIds of the "
    + "parents of the result dataset"));
  c.push(code(["resultDatasetParents=" + JSON.stringify(ids)], "resultDatasetParents"));
  c.push(markdown("Description : history identifier, different versions of the same notebook "
    + "should share the same identifier to keep the history"));
  c.push(code(["resultDatasetHistoryId='" + crypto.randomUUID() + "'"], "resultDatasetHistoryId"));
  c.push(markdown("Description : resultDatasetName variable, indicates the name of the result "
    + "dataset, **to be set by the user**"));
  c.push(code(["resultDatasetName='Name your dataset!'"], "resultDatasetName"));
  c.push(markdown("Description : resultDatasetNotes variable, indicate some notes of the result "
    + "dataset, **to be set by the user**"));
  c.push(code(["resultDatasetNotes='Write some notes or leave empty this property!'"],
              "resultDatasetNotes"));
  c.push(markdown("## Connect to openBIS"));
  c.push(code(["from pybis import Openbis\\n", "o = Openbis()"]));
  c.push(markdown("## openBIS session refresh (optional)"));
  // trial: commented out, so that Run All goes through (the ELN's cell fails as it stands)
  c.push(code(["# Use this code to reconnect in case your openBIS session expires and you an "
    + "error on the previous step.\\n",
    '# sessionToken = "write your session token here"\\n',
    "# o.set_token(token=sessionToken)"]));
  c.push(markdown("## Datasets Information"));
  datasets.forEach((ds, i) => {
    c.push(markdown("Dataset " + ids[i] + " Owner:"));
    if (ds.sample) {
      c.push(code(["s" + i + " = o.get_object('" + ds.sample.permId.permId + "')\\n", "s" + i]));
    } else if (ds.experiment) {
      c.push(code(["s" + i + " = o.get_experiment('" + ds.experiment.permId.permId + "')\\n",
                   "s" + i + ".attrs"]));
    }
    c.push(markdown("Dataset " + ids[i] + ":"));
    c.push(code(["ds" + i + " = o.get_dataset('" + ids[i] + "')\\n", "ds" + i + ".attrs"]));
    c.push(code(["ds" + i + '.get_files(start_folder="/")']));
  });
  c.push(markdown("## Datasets Download"));
  datasets.forEach((ds, i) => {
    c.push(code(["ds" + i + ".download(files=ds" + i + ".file_list, destination='./', "
      + "wait_until_finished=True)"]));
  });
  c.push(markdown("## Process your data here"));
  // trial: plot the first CSV the datasets brought (the ELN leaves this cell empty)
  c.push(code(["# trial: plot the first CSV file of the downloaded datasets\\n",
    "import glob\\n", "import pandas as pd\\n",
    "csv = sorted(glob.glob(f'./{resultDatasetParents[0]}/**/*.csv', recursive=True))[0]\\n",
    "table = pd.read_csv(csv)\\n",
    "axes = table.plot(x=table.columns[0], y=list(table.columns[1:]), title=csv)\\n",
    "axes.figure.savefig(fileName + '.png')"]));
  c.push(markdown("## Saving the results"));
  c.push(markdown("The next cell stores a copy of this notebook as an html file so it can be "
    + "open easily in browsers without the need of Jupyter, **save before executing this to get "
    + "the lattest version as html**"));
  c.push(code(["from nbconvert import HTMLExporter\\n", "import codecs\\n", "import nbformat\\n",
    "exporter = HTMLExporter()\\n",
    "output_notebook = nbformat.read(fileName, as_version=4)\\n",
    "output, resources = exporter.from_notebook_node(output_notebook)\\n",
    "codecs.open(fileName + '.html', 'w', encoding='utf-8').write(output)\\n"]));
  c.push(markdown("Sets the owner of the result dataset"));
  const id = owner.identifier;
  const experiment = owner["@type"] === "as.dto.experiment.Experiment";
  const getter = experiment ? "o.get_experiment('" + id + "')" : "o.get_object('" + id + "')";
  c.push(code(["owner= " + getter + ",\\n", "owner"]));
  c.push(markdown("Creates the result dataset"));
  c.push(code(["ds_new = o.new_dataset(\\n", "type='ANALYSIS_NOTEBOOK',\\n",
    (experiment ? "experiment= " : "sample= ") + getter + ",\\n",
    "parents=resultDatasetParents,\\n",
    // trial: the plot goes into the dataset too (the ELN uploads the notebook and its HTML)
    "files = [fileName, fileName + '.html', fileName + '.png'],\\n",
    "props={'$name': resultDatasetName, 'notes': resultDatasetNotes, "
    + "'$history_id' : resultDatasetHistoryId })\\n", "ds_new.save()"]));
  return {cells: c, metadata: {autogenerated_by_openbis: true,
    kernelspec: {display_name: "Python 3", language: "python", name: "python3"},
    language_info: {codemirror_mode: {name: "ipython", version: 3}, file_extension: ".py",
      mimetype: "text/x-python", name: "python", nbconvert_exporter: "python",
      pygments_lexer: "ipython3", version: "3.5.2"}},
    nbformat: 4, nbformat_minor: 2};
}
</script>
</body></html>
"""
