/**
 * The panel's logic without JupyterLab: what to show and what to send.
 * Everything here is pure, so jest tests it directly (src/__tests__/logic.spec.ts).
 */

export type Kind = 'root' | 'space' | 'project' | 'experiment' | 'sample' | 'dataset' | 'file';

export interface INode {
  kind: Kind;
  id: string;
  permId?: string;
  code?: string;
  type?: string;
  name?: string;
  path?: string;
  size?: number;
}

export interface IStatus {
  url: string;
  host: string;
  user: string | null;
  valid: boolean;
  hint: string | null;
}

export interface IJob {
  id: string;
  permId: string;
  folder: string;
  state: 'running' | 'done' | 'failed';
  bytesDone: number;
  bytesTotal: number;
  files: string[];
  error: { status: number; reason: string } | null;
}

export interface IOwner {
  kind: 'sample' | 'experiment';
  id: string;
}

export interface IContext {
  fromEln: boolean;
  owner: IOwner | null;
  parents: string[];
  name: string;
  notes: string;
  historyId: string;
}

export interface IDifferences {
  python: [string, string] | null;
  image: [string, string] | null;
  changed: { name: string; saved: string; current: string }[];
  missing: { name: string; saved: string }[];
  added: { name: string; current: string }[];
}

export interface IEnvironmentReport {
  dataset: {
    permId: string;
    type: string;
    name: string;
    parents: string[];
    files: string[];
  } | null;
  saved?: { python: string; image: string } | null;
  current?: { python: string; image: string };
  differences?: IDifferences | null;
}

/** What the panel's header says about the session. */
export function statusLines(status: IStatus | null): {
  text: string;
  hint: string | null;
  ok: boolean;
} {
  if (!status) {
    return { text: 'Checking the openBIS session…', hint: null, ok: false };
  }
  const where = status.host || status.url || 'openBIS';
  if (status.valid && status.user) {
    return {
      text: `Signed in to ${where} as ${status.user}`,
      hint: null,
      ok: true
    };
  }
  return {
    text: `Not signed in to ${where}`,
    hint: status.hint,
    ok: false
  };
}

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB'];

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) {
    return '?';
  }
  let i = 0;
  let value = n;
  while (value >= 1024 && i < UNITS.length - 1) {
    value /= 1024;
    i++;
  }
  return i === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[i]}`;
}

/** Fraction done, 0..1 (a job that knows no total yet is at 0). */
export function progressFraction(job: IJob): number {
  if (job.state === 'done') {
    return 1;
  }
  if (!job.bytesTotal) {
    return 0;
  }
  return Math.min(1, job.bytesDone / job.bytesTotal);
}

export function progressText(job: IJob): string {
  if (job.state === 'failed') {
    return `${job.permId}: ${job.error?.reason ?? 'failed'}`;
  }
  if (job.state === 'done') {
    return `${job.permId}: saved ${job.files.join(', ')}`;
  }
  const percent = Math.floor(progressFraction(job) * 100);
  return `${job.permId}: ${formatBytes(job.bytesDone)} of ${formatBytes(
    job.bytesTotal
  )} (${percent}%)`;
}

/** One tree row: code, name and type, as openBIS users know them. */
export function nodeLabel(node: INode): string {
  if (node.kind === 'file') {
    return `${node.path} (${formatBytes(node.size ?? 0)})`;
  }
  const code = node.kind === 'dataset' ? node.permId || node.id : node.code || node.id;
  const name = node.name ? ` — ${node.name}` : '';
  const type = node.type ? ` [${node.type}]` : '';
  return `${code}${name}${type}`;
}

const KIND_WORDS: Record<Kind, string> = {
  root: 'openBIS',
  space: 'Space',
  project: 'Project',
  experiment: 'Collection',
  sample: 'Object',
  dataset: 'Dataset',
  file: 'File'
};

export function kindWord(kind: Kind): string {
  return KIND_WORDS[kind];
}

export function hasChildren(kind: Kind): boolean {
  return kind !== 'file';
}

/** Objects and collections can own a new dataset. */
export function canOwn(node: INode): boolean {
  return node.kind === 'sample' || node.kind === 'experiment';
}

export function isAnalysis(node: INode): boolean {
  return node.kind === 'dataset' && node.type === 'ANALYSIS_NOTEBOOK';
}

const PERM_ID = /^\d{17}-\d+$/;

export function isPermId(text: string): boolean {
  return PERM_ID.test(text.trim());
}

/** "a, b c" -> ["a", "b", "c"], without duplicates, order kept. */
export function parseParents(text: string): string[] {
  const seen = new Set<string>();
  for (const part of text.split(/[\s,;]+/)) {
    if (part) {
      seen.add(part);
    }
  }
  return [...seen];
}

export interface ISaveForm {
  notebook: string | null;
  owner: IOwner | null;
  parentsText: string;
  name: string;
  notes: string;
  historyId: string;
  html: boolean;
  environment: boolean;
  files: string[];
  type?: string;
}

export const DEFAULT_TYPE = 'ANALYSIS_NOTEBOOK';

export interface ISaveRequest {
  notebook: string;
  owner: IOwner;
  parents: string[];
  name: string;
  notes: string;
  historyId: string;
  html: boolean;
  environment: boolean;
  files: string[];
  type: string;
}

/** The body of POST openbis/api/datasets, or the sentence that says what is missing. */
export function buildSaveRequest(form: ISaveForm): ISaveRequest | string {
  if (!form.notebook) {
    return 'Open the notebook to save first.';
  }
  if (!form.owner) {
    return 'Pick the object or collection the dataset belongs to (in the tree, "Attach here").';
  }
  const parents = parseParents(form.parentsText);
  const bad = parents.filter(p => !isPermId(p));
  if (bad.length) {
    return `Not a dataset permId: ${bad.join(', ')}`;
  }
  const type = (form.type ?? '').trim().toUpperCase() || DEFAULT_TYPE;
  if (!/^[A-Z0-9_$.-]+$/.test(type)) {
    return `Not a dataset type code: ${type}`;
  }
  const files = [...new Set(form.files)].filter(f => f !== form.notebook);
  return {
    notebook: form.notebook,
    owner: form.owner,
    parents,
    name: form.name.trim(),
    notes: form.notes,
    historyId: form.historyId,
    html: form.html,
    environment: form.environment,
    files,
    type
  };
}

/** Prefill the save form: the notebook's own metadata wins over the panel's selection. */
export function prefill(
  context: IContext | null,
  selected: IOwner | null,
  parentsText: string
): { owner: IOwner | null; parentsText: string; name: string; notes: string; historyId: string } {
  if (context && (context.owner || context.parents.length)) {
    return {
      owner: context.owner ?? selected,
      parentsText: context.parents.join(', '),
      name: context.name === 'Name your dataset!' ? '' : context.name,
      notes:
        context.notes === 'Write some notes or leave empty this property!' ? '' : context.notes,
      historyId: context.historyId
    };
  }
  return { owner: selected, parentsText, name: '', notes: '', historyId: '' };
}

/** A file in the notebook's folder, as the contents API lists it. */
export interface IFolderItem {
  path: string;
  name: string;
  type: string; // 'file', 'notebook' or 'directory'
  last_modified: string;
}

export interface ICompanion {
  path: string;
  name: string;
  ticked: boolean;
}

export const MAX_COMPANIONS = 20;

/** The files next to a notebook that the save form offers (what the analysis wrote there: a
 * plot, a table of results): the folder's files, newest first, but the notebook itself,
 * hidden files and, when the panel makes one, its HTML copy. Those named after the notebook
 * (``analysis.ipynb.png``, ``analysis.png``, ``analysis_results.csv``) come ticked. */
export function companionFiles(
  items: IFolderItem[],
  notebook: string,
  html: boolean
): ICompanion[] {
  const name = notebook.slice(notebook.lastIndexOf('/') + 1);
  const stem = name.replace(/\.ipynb$/, '');
  return items
    .filter(
      item =>
        item.type !== 'directory' &&
        item.path !== notebook &&
        !item.name.startsWith('.') &&
        !(html && item.name === `${name}.html`)
    )
    .sort((a, b) => b.last_modified.localeCompare(a.last_modified))
    .slice(0, MAX_COMPANIONS)
    .map(item => ({
      path: item.path,
      name: item.name,
      ticked:
        stem !== '' && item.name.startsWith(stem) && /^[._-]/.test(item.name.slice(stem.length))
    }));
}

export function ownerLabel(owner: IOwner | null): string {
  if (!owner) {
    return 'none picked';
  }
  return `${owner.kind === 'sample' ? 'Object' : 'Collection'} ${owner.id}`;
}

export const MAX_DIFFERENCES = 12;

/** The banner's lines: the environment an analysis was made in beside this one. */
export function environmentLines(report: IEnvironmentReport): string[] {
  if (!report.dataset) {
    return [];
  }
  const lines: string[] = [];
  const ds = report.dataset;
  lines.push(`Re-opened from openBIS dataset ${ds.permId}${ds.name ? ` (${ds.name})` : ''}.`);
  if (!report.saved || !report.differences) {
    lines.push('No environment was saved with it: package versions cannot be compared.');
    return lines;
  }
  const saved = report.saved;
  const current = report.current ?? { python: '?', image: '' };
  lines.push(
    `Made with Python ${saved.python || '?'}${saved.image ? ` in ${saved.image}` : ''}; ` +
      `now Python ${current.python}${current.image ? ` in ${current.image}` : ''}.`
  );
  const d = report.differences;
  const parts: string[] = [];
  if (d.python) {
    parts.push(`Python ${d.python[0]} → ${d.python[1]}`);
  }
  if (d.image) {
    parts.push(`image ${d.image[0] || '?'} → ${d.image[1] || '?'}`);
  }
  for (const c of d.changed) {
    parts.push(`${c.name} ${c.saved} → ${c.current}`);
  }
  for (const m of d.missing) {
    parts.push(`${m.name} ${m.saved} missing now`);
  }
  for (const a of d.added) {
    parts.push(`${a.name} ${a.current} new`);
  }
  const shown = parts.slice(0, MAX_DIFFERENCES);
  const more = parts.length - shown.length;
  lines.push(
    parts.length
      ? `Differences: ${shown.join('; ')}${more ? `; and ${more} more` : ''}.`
      : 'Same environment: no differences.'
  );
  return lines;
}

/** The folder a notebook lives in, as an API path ("" for the home). */
export function folderOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** A tree item as the keyboard sees it: the visible items in document order. */
export interface ITreeItem {
  level: number; // 1 for the top level
  expandable: boolean;
  expanded: boolean;
}

/** What a key does in the tree: move the focus, open or close an item, or nothing. */
export type TreeMove = { focus: number } | { expand: number } | { collapse: number } | null;

/**
 * The WAI-ARIA tree pattern's keys (https://www.w3.org/WAI/ARIA/apg/patterns/treeview/):
 * Down/Up move to the next/previous visible item; Right opens a closed item, or moves into
 * an open one; Left closes an open item, or moves to the parent; Home/End go to the first
 * and last item; Enter opens or closes the item.
 */
export function treeKey(items: ITreeItem[], index: number, key: string): TreeMove {
  const item = items[index];
  if (!item) {
    return null;
  }
  switch (key) {
    case 'ArrowDown':
      return index + 1 < items.length ? { focus: index + 1 } : null;
    case 'ArrowUp':
      return index > 0 ? { focus: index - 1 } : null;
    case 'Home':
      return { focus: 0 };
    case 'End':
      return { focus: items.length - 1 };
    case 'ArrowRight':
      if (!item.expandable) {
        return null;
      }
      if (!item.expanded) {
        return { expand: index };
      }
      // the first child, once it is there (children load when an item first opens)
      return items[index + 1]?.level === item.level + 1 ? { focus: index + 1 } : null;
    case 'ArrowLeft':
      if (item.expandable && item.expanded) {
        return { collapse: index };
      }
      for (let i = index - 1; i >= 0; i--) {
        if (items[i].level < item.level) {
          return { focus: i };
        }
      }
      return null;
    case 'Enter':
      if (!item.expandable) {
        return null;
      }
      return item.expanded ? { collapse: index } : { expand: index };
    default:
      return null;
  }
}
