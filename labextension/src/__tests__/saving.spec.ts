import { SaveBeforeSaving, isSavingCell } from '../saving';

// the saving cells of the ELN's notebook (openbis_double/eln.py, tests/eln.py) and of our
// templates (notebook_templates/), as they stand there
const ELN_HTML =
  'from nbconvert import HTMLExporter\nimport codecs\nimport nbformat\n' +
  'exporter = HTMLExporter()\noutput_notebook = nbformat.read(fileName, as_version=4)\n';
const ELN_UPLOAD =
  "ds_new = o.new_dataset(\ntype='ANALYSIS_NOTEBOOK',\nsample= o.get_object('/LAB/PROJ/SAMPLE1'),\n" +
  "parents=resultDatasetParents,\nfiles = [fileName, fileName + '.html'],\nds_new.save()";
const BASH_HTML =
  'jupyter nbconvert --log-level=WARN --to html --output "$fileName.html" "$fileName"';
const BASH_UPLOAD = 'openbis-data save --"$ownerType" "$ownerId" --parents="$parents" \\';
const R_HTML = 'status <- system2("jupyter", shQuote(c("nbconvert", "--to", "html", fileName)))';
const R_UPLOAD = 'openbis_data(\n    "save", paste0("--", ownerType), ownerId,';
const OCTAVE_UPLOAD = "newPermId = openbis_data('save', ['--' ownerType], ownerId, ...";

describe('saving cells', () => {
  it.each([ELN_HTML, ELN_UPLOAD, BASH_HTML, BASH_UPLOAD, R_HTML, R_UPLOAD, OCTAVE_UPLOAD])(
    'finds a cell that reads or uploads the notebook file: %s',
    source => expect(isSavingCell(source)).toBe(true)
  );
  it.each([
    "fileName='run 1.ipynb'",
    'from pybis import Openbis\no = Openbis()',
    "ds0.download(files=ds0.file_list, destination='./', wait_until_finished=True)",
    'openbis_data <- function(...) {\n  system2("openbis-data", shQuote(c(...)))\n}',
    'dataFiles <- openbis_data("download", permId, ".")',
    "axes.figure.savefig(fileName + '.png')",
    ''
  ])('leaves other cells alone: %s', source => expect(isSavingCell(source)).toBe(false));
});

/** A cell run as the test drives it: JupyterLab's executor answers when told. */
interface IRun {
  name: string;
  saving: boolean;
  notebook: object;
}

class Kernel {
  started: string[] = [];
  held: string[] = [];
  released: string[] = [];
  saves: string[][] = []; // what had started (in order) at each save
  failures: string[] = [];
  saveError: Error | null = null;
  private answers = new Map<string, (ran: boolean | Error) => void>();

  executor = new SaveBeforeSaving<IRun>({
    notebookOf: run => run.notebook,
    isSaving: run => run.saving,
    run: run =>
      new Promise<boolean>((resolve, reject) => {
        this.started.push(run.name);
        this.answers.set(run.name, ran => (ran instanceof Error ? reject(ran) : resolve(ran)));
      }),
    save: async () => {
      this.saves.push([...this.started]);
      if (this.saveError) {
        throw this.saveError;
      }
    },
    hold: (run, held) => (held ? this.held : this.released).push(run.name),
    failed: (_, reason) => this.failures.push(reason)
  });

  finish(name: string, ran: boolean | Error = true): void {
    const answer = this.answers.get(name);
    if (!answer) {
      throw new Error(`${name} was not started`);
    }
    answer(ran);
  }
}

const flush = () => new Promise(resolve => setTimeout(resolve, 0));

function queue(kernel: Kernel, notebook: object, cells: [string, boolean][]) {
  return cells.map(([name, saving]) =>
    kernel.executor.runCell({ name, saving, notebook }).catch(error => error as Error)
  );
}

describe('a saving cell', () => {
  const NB = {};

  it('runs after the cells above finished and the notebook was saved (Run All)', async () => {
    const k = new Kernel();
    const runs = queue(k, NB, [
      ['plot', false],
      ['html', true],
      ['owner', false],
      ['upload', true]
    ]);
    await flush();
    // the plot goes to the kernel at once; everything behind the saving cell waits
    expect(k.started).toEqual(['plot']);
    expect(k.held).toEqual(['html', 'owner', 'upload']);
    expect(k.saves).toEqual([]);
    k.finish('plot');
    await flush();
    expect(k.saves).toEqual([['plot']]); // saved once the plot finished, before html ran
    expect(k.started).toEqual(['plot', 'html']);
    k.finish('html');
    await flush();
    expect(k.started).toEqual(['plot', 'html', 'owner']);
    k.finish('owner');
    await flush();
    // saved again before the upload: the html cell's and the owner's outputs are in
    expect(k.saves).toEqual([['plot'], ['plot', 'html', 'owner']]);
    k.finish('upload');
    expect(await Promise.all(runs)).toEqual([true, true, true, true]);
    expect(k.released).toEqual([]);
  });

  it('run on its own, saves at once when nothing is running', async () => {
    const k = new Kernel();
    const run = k.executor.runCell({ name: 'html', saving: true, notebook: NB });
    await flush();
    expect(k.saves).toEqual([[]]);
    expect(k.started).toEqual(['html']);
    k.finish('html');
    expect(await run).toBe(true);
  });

  it('waits for a cell still running from an earlier run', async () => {
    const k = new Kernel();
    queue(k, NB, [['slow', false]]);
    const [html] = queue(k, NB, [['html', true]]);
    await flush();
    expect(k.started).toEqual(['slow']);
    k.finish('slow');
    await flush();
    expect(k.saves).toEqual([['slow']]);
    k.finish('html');
    expect(await html).toBe(true);
  });

  it('does not run, nor the cells behind it, when a cell above failed', async () => {
    const k = new Kernel();
    const runs = queue(k, NB, [
      ['plot', false],
      ['html', true],
      ['upload', true]
    ]);
    await flush();
    const error = new Error('KernelReplyNotOK');
    k.finish('plot', error);
    expect(await Promise.all(runs)).toEqual([error, false, false]);
    expect(k.saves).toEqual([]);
    expect(k.started).toEqual(['plot']);
    expect(k.released).toEqual(['html', 'upload']); // their [*] prompts go
  });

  it('stops the cells behind it when it fails itself', async () => {
    const k = new Kernel();
    const runs = queue(k, NB, [
      ['html', true],
      ['after', false]
    ]);
    await flush();
    const error = new Error('KernelReplyNotOK');
    k.finish('html', error);
    expect(await Promise.all(runs)).toEqual([error, false]);
    expect(k.started).toEqual(['html']);
  });

  it('does not run when the notebook cannot be saved, and says why', async () => {
    const k = new Kernel();
    k.saveError = new Error('Permission denied');
    const runs = queue(k, NB, [
      ['html', true],
      ['after', false]
    ]);
    expect(await Promise.all(runs)).toEqual([false, false]);
    expect(k.started).toEqual([]);
    expect(k.failures).toEqual(['Permission denied']);
  });

  it('leaves other notebooks alone', async () => {
    const k = new Kernel();
    queue(k, NB, [['slow', false]]);
    const [other] = queue(k, {}, [['html elsewhere', true]]);
    await flush();
    expect(k.started).toEqual(['slow', 'html elsewhere']);
    k.finish('html elsewhere');
    expect(await other).toBe(true);
  });

  it('lets the cells run straight again once the queue is empty', async () => {
    const k = new Kernel();
    const [html] = queue(k, NB, [['html', true]]);
    await flush();
    k.finish('html');
    await html;
    await flush();
    queue(k, NB, [['next', false]]);
    expect(k.started).toEqual(['html', 'next']); // at once, not held
    expect(k.held).toEqual(['html']);
  });
});

describe('settled (the panel saves after the queued cells)', () => {
  it('resolves once the cells queued so far finished, failed ones too', async () => {
    const k = new Kernel();
    const NB = {};
    queue(k, NB, [
      ['a', false],
      ['b', false]
    ]);
    let settled = false;
    void k.executor.settled(NB).then(() => (settled = true));
    await flush();
    k.finish('a', new Error('KernelReplyNotOK'));
    await flush();
    expect(settled).toBe(false);
    k.finish('b');
    await flush();
    expect(settled).toBe(true);
  });

  it('resolves at once for a notebook that runs nothing', async () => {
    await expect(new Kernel().executor.settled({})).resolves.toBeUndefined();
  });
});
