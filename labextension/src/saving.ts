/**
 * Saving cells see a complete notebook on disk.
 *
 * The ELN's notebook and our templates save themselves: one cell reads the notebook's own
 * file (nbformat/nbconvert) to write its HTML copy, the next uploads the file to openBIS.
 * JupyterLab keeps outputs in the browser until the document is saved, so without help
 * these cells read the file as it was before the run. Here a cell executor (JupyterLab's
 * INotebookCellExecutor) holds such a cell back until every cell queued before it in the
 * same notebook has finished, saves the notebook, then runs it; cells queued after it wait
 * for it in turn, so the kernel still runs them in order. As with the kernel's own queue, a
 * cell that failed stops the cells queued behind it.
 *
 * Without JupyterLab imports, so that jest tests it directly (src/__tests__/saving.spec.ts).
 */

/** Code that reads or uploads the notebook's own file: the HTML copy's cell
 * (nbformat.read, nbconvert's HTMLExporter or `jupyter nbconvert`) and the upload
 * (pyBIS's new_dataset, `openbis-data save` from Bash, R and Octave). */
const SAVING = [
  /\bnbformat\.read\s*\(/,
  /\bnbconvert\b/,
  /\.new_dataset\s*\(/,
  /\bopenbis[-_]data\W+save\b/
];

export function isSavingCell(source: string): boolean {
  return SAVING.some(pattern => pattern.test(source));
}

/** What the executor needs from JupyterLab (index.ts), per run of one cell (``O``). */
export interface ISavingHooks<O> {
  /** The notebook the cell belongs to: the runs of one notebook are ordered. */
  notebookOf(options: O): object;
  /** True for a code cell that reads or uploads the notebook's file. */
  isSaving(options: O): boolean;
  /** JupyterLab's own executor. */
  run(options: O): Promise<boolean>;
  /** Write the notebook to disk (and wait for it). */
  save(options: O): Promise<void>;
  /** A code cell is held back (``true``: as the kernel's queue shows it, outputs cleared
   * and a ``*`` prompt), or given up without running (``false``). */
  hold(options: O, held: boolean): void;
  /** The notebook could not be saved: the cell does not run; say why. */
  failed(options: O, reason: string): void;
}

interface IQueue {
  running: Set<Promise<boolean>>;
  /** The last held-back run while it is pending: later cells wait for it. */
  tail: Promise<boolean> | null;
}

function succeeded(run: Promise<boolean>): Promise<boolean> {
  return run.then(
    ran => ran === true,
    () => false
  );
}

export class SaveBeforeSaving<O> {
  constructor(private hooks: ISavingHooks<O>) {}

  /** INotebookCellExecutor.runCell. */
  runCell(options: O): Promise<boolean> {
    const key = this.hooks.notebookOf(options);
    let queue = this.queues.get(key);
    if (!queue) {
      queue = { running: new Set(), tail: null };
      this.queues.set(key, queue);
    }
    let run: Promise<boolean>;
    if (this.hooks.isSaving(options)) {
      const before = [...queue.running];
      run = this.held(options, async () => {
        const all = await Promise.all(before.map(succeeded));
        return all.every(Boolean);
      });
      queue.tail = run;
    } else if (queue.tail) {
      const tail = queue.tail;
      run = this.held(options, () => succeeded(tail), false);
      queue.tail = run;
    } else {
      run = this.hooks.run(options);
    }
    const current = queue;
    current.running.add(run);
    const done = () => {
      current.running.delete(run);
      if (current.tail === run) {
        current.tail = null;
      }
    };
    run.then(done, done);
    return run;
  }

  /** Resolves once every cell of ``notebook`` queued so far has finished (or failed). */
  async settled(notebook: object): Promise<void> {
    const running = [...(this.queues.get(notebook)?.running ?? [])];
    await Promise.all(running.map(succeeded));
  }

  /** Hold the cell back until ``ready`` says the cells before it succeeded; then save (when
   * ``save``) and run it, or give it up. */
  private async held(options: O, ready: () => Promise<boolean>, save = true): Promise<boolean> {
    this.hooks.hold(options, true);
    if (!(await ready())) {
      this.hooks.hold(options, false);
      return false;
    }
    if (save) {
      try {
        await this.hooks.save(options);
      } catch (error) {
        this.hooks.hold(options, false);
        this.hooks.failed(options, error instanceof Error ? error.message : String(error));
        return false;
      }
    }
    return this.hooks.run(options);
  }

  private queues = new WeakMap<object, IQueue>();
}
