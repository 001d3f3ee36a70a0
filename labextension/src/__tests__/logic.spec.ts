import {
  IEnvironmentReport,
  IJob,
  ITreeItem,
  MAX_DIFFERENCES,
  MAX_COMPANIONS,
  buildSaveRequest,
  canOwn,
  companionFiles,
  environmentLines,
  folderOf,
  formatBytes,
  isAnalysis,
  isPermId,
  nodeLabel,
  parseParents,
  prefill,
  progressFraction,
  progressText,
  statusLines,
  treeKey
} from '../logic';

const HINT =
  'Your openBIS session has expired: open Utilities > Jupyter Workspace in the ELN to refresh it.';

describe('session status', () => {
  it('names the user and the openBIS', () => {
    const lines = statusLines({
      url: 'https://openbis.example.org',
      host: 'openbis.example.org',
      user: 'JDoe',
      valid: true,
      hint: null
    });
    expect(lines).toEqual({
      text: 'Signed in to openbis.example.org as JDoe',
      hint: null,
      ok: true
    });
  });
  it('shows the session hint word for word when the session is dead', () => {
    const lines = statusLines({ url: 'u', host: 'h', user: null, valid: false, hint: HINT });
    expect(lines.ok).toBe(false);
    expect(lines.text).toBe('Not signed in to h');
    expect(lines.hint).toBe(HINT);
  });
  it('says it is checking before the first answer', () => {
    expect(statusLines(null).ok).toBe(false);
  });
});

describe('download progress', () => {
  const job: IJob = {
    id: 'x',
    permId: '20240115093000000-5',
    folder: '',
    state: 'running',
    bytesDone: 1572864,
    bytesTotal: 3 * 1048576,
    files: [],
    error: null
  };
  it('reports bytes and percent while running', () => {
    expect(progressFraction(job)).toBeCloseTo(0.5);
    expect(progressText(job)).toBe('20240115093000000-5: 1.5 MB of 3.0 MB (50%)');
  });
  it('is whole when done and names the files', () => {
    const done = { ...job, state: 'done' as const, bytesDone: 0, files: ['a 2.csv'] };
    expect(progressFraction(done)).toBe(1);
    expect(progressText(done)).toBe('20240115093000000-5: saved a 2.csv');
  });
  it('shows the reason of a failure and survives a zero total', () => {
    const failed = {
      ...job,
      state: 'failed' as const,
      bytesTotal: 0,
      error: { status: 401, reason: HINT }
    };
    expect(progressFraction(failed)).toBe(0);
    expect(progressText(failed)).toBe(`20240115093000000-5: ${HINT}`);
  });
  it('formats sizes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(3500)).toBe('3.4 kB');
    expect(formatBytes(-1)).toBe('?');
  });
});

describe('tree rows', () => {
  it('labels with code, name and type', () => {
    expect(
      nodeLabel({
        kind: 'sample',
        id: '/LAB/PROJ/SAMPLE1',
        code: 'SAMPLE1',
        name: 'Sample 1',
        type: 'EXPERIMENTAL_STEP'
      })
    ).toBe('SAMPLE1 — Sample 1 [EXPERIMENTAL_STEP]');
    expect(
      nodeLabel({ kind: 'dataset', id: 'P', permId: '20240115093000000-4', type: 'RAW_DATA' })
    ).toBe('20240115093000000-4 [RAW_DATA]');
    expect(nodeLabel({ kind: 'file', id: 'x', path: 'original/a.csv', size: 2048 })).toBe(
      'original/a.csv (2.0 kB)'
    );
  });
  it('knows who can own datasets and what can be re-opened', () => {
    expect(canOwn({ kind: 'sample', id: 'S' })).toBe(true);
    expect(canOwn({ kind: 'experiment', id: 'E' })).toBe(true);
    expect(canOwn({ kind: 'project', id: 'P' })).toBe(false);
    expect(isAnalysis({ kind: 'dataset', id: 'D', type: 'ANALYSIS_NOTEBOOK' })).toBe(true);
    expect(isAnalysis({ kind: 'dataset', id: 'D', type: 'RAW_DATA' })).toBe(false);
  });
});

describe('save form', () => {
  const form = {
    notebook: 'work/a.ipynb',
    owner: { kind: 'sample' as const, id: '/LAB/PROJ/SAMPLE1' },
    parentsText: '20240115093000000-4, 20240115093000000-5 20240115093000000-4',
    name: ' Run 1 ',
    notes: 'n',
    historyId: '',
    html: true,
    environment: true,
    files: ['work/a.ipynb', 'work/out.png']
  };
  it('builds the request with parents once each and without the notebook twice', () => {
    expect(buildSaveRequest(form)).toEqual({
      notebook: 'work/a.ipynb',
      owner: form.owner,
      parents: ['20240115093000000-4', '20240115093000000-5'],
      name: 'Run 1',
      notes: 'n',
      historyId: '',
      html: true,
      environment: true,
      files: ['work/out.png'],
      type: 'ANALYSIS_NOTEBOOK'
    });
  });
  it('says what is missing instead of sending', () => {
    expect(buildSaveRequest({ ...form, notebook: null })).toMatch(/Open the notebook/);
    expect(buildSaveRequest({ ...form, owner: null })).toMatch(/Pick the object or collection/);
    expect(buildSaveRequest({ ...form, parentsText: 'x, ../y' })).toBe(
      'Not a dataset permId: x, ../y'
    );
    expect(buildSaveRequest({ ...form, type: 'raw data' })).toBe(
      'Not a dataset type code: RAW DATA'
    );
  });
  it('takes another dataset type when given one', () => {
    const request = buildSaveRequest({ ...form, type: ' raw_data ' });
    expect(typeof request !== 'string' && request.type).toBe('RAW_DATA');
  });
  it('parses parent lists and permIds', () => {
    expect(parseParents(' a;b ,, c ')).toEqual(['a', 'b', 'c']);
    expect(isPermId('20240115093000000-4')).toBe(true);
    expect(isPermId('2024-4')).toBe(false);
  });
  it('prefills from an ELN notebook over the tree selection', () => {
    const selected = { kind: 'experiment' as const, id: '/X/Y/Z' };
    const context = {
      fromEln: true,
      owner: { kind: 'sample' as const, id: '/LAB/PROJ/SAMPLE1' },
      parents: ['20240115093000000-4'],
      name: 'Name your dataset!',
      notes: 'Write some notes or leave empty this property!',
      historyId: 'h'
    };
    expect(prefill(context, selected, '')).toEqual({
      owner: context.owner,
      parentsText: '20240115093000000-4',
      name: '',
      notes: '',
      historyId: 'h'
    });
    const plain = { ...context, owner: null, parents: [] };
    expect(prefill(plain, selected, 'p')).toEqual({
      owner: selected,
      parentsText: 'p',
      name: '',
      notes: '',
      historyId: ''
    });
    expect(prefill(null, null, '').owner).toBeNull();
  });
});

describe('environment banner', () => {
  const base: IEnvironmentReport = {
    dataset: {
      permId: '20240115093000000-1001',
      type: 'ANALYSIS_NOTEBOOK',
      name: 'Run 1',
      parents: [],
      files: []
    },
    saved: { python: '3.11.2', image: 'singleuser:1' },
    current: { python: '3.11.2', image: 'singleuser:2' },
    differences: {
      python: null,
      image: ['singleuser:1', 'singleuser:2'],
      changed: [{ name: 'pybis', saved: '1.36.0', current: '1.37.5' }],
      missing: [{ name: 'scipy', saved: '1.0' }],
      added: [{ name: 'ipywidgets', current: '8.1.5' }]
    }
  };
  it('names the dataset, both environments and every difference', () => {
    expect(environmentLines(base)).toEqual([
      'Re-opened from openBIS dataset 20240115093000000-1001 (Run 1).',
      'Made with Python 3.11.2 in singleuser:1; now Python 3.11.2 in singleuser:2.',
      'Differences: image singleuser:1 → singleuser:2; pybis 1.36.0 → 1.37.5; ' +
        'scipy 1.0 missing now; ipywidgets 8.1.5 new.'
    ]);
  });
  it('says so when nothing differs or nothing was saved', () => {
    const same = {
      ...base,
      differences: { python: null, image: null, changed: [], missing: [], added: [] }
    };
    expect(environmentLines(same)[2]).toBe('Same environment: no differences.');
    expect(environmentLines({ ...base, saved: null, differences: null })[1]).toMatch(
      /No environment was saved/
    );
    expect(environmentLines({ dataset: null })).toEqual([]);
  });
  it('keeps long lists short', () => {
    const many = Array.from({ length: 40 }, (_, i) => ({ name: `p${i}`, current: '1' }));
    const report = {
      ...base,
      differences: { ...base.differences!, image: null, changed: [], missing: [], added: many }
    };
    const line = environmentLines(report)[2];
    expect(line.split(';').length).toBe(MAX_DIFFERENCES + 1);
    expect(line).toMatch(/and 28 more\.$/);
  });
  it('finds a notebook folder', () => {
    expect(folderOf('a/b/c.ipynb')).toBe('a/b');
    expect(folderOf('c.ipynb')).toBe('');
  });
});

describe('tree keyboard (WAI-ARIA tree pattern)', () => {
  // LAB (open) > PROJ (open) > EXP1 (closed); LAB2 (closed); a file at the top level
  const items: ITreeItem[] = [
    { level: 1, expandable: true, expanded: true },
    { level: 2, expandable: true, expanded: true },
    { level: 3, expandable: true, expanded: false },
    { level: 1, expandable: true, expanded: false },
    { level: 1, expandable: false, expanded: false }
  ];
  it('moves down and up through the visible items, stopping at the ends', () => {
    expect(treeKey(items, 0, 'ArrowDown')).toEqual({ focus: 1 });
    expect(treeKey(items, 2, 'ArrowDown')).toEqual({ focus: 3 });
    expect(treeKey(items, 4, 'ArrowDown')).toBeNull();
    expect(treeKey(items, 3, 'ArrowUp')).toEqual({ focus: 2 });
    expect(treeKey(items, 0, 'ArrowUp')).toBeNull();
    expect(treeKey(items, 2, 'Home')).toEqual({ focus: 0 });
    expect(treeKey(items, 0, 'End')).toEqual({ focus: 4 });
  });
  it('opens a closed item with Right, then moves into it', () => {
    expect(treeKey(items, 2, 'ArrowRight')).toEqual({ expand: 2 });
    expect(treeKey(items, 0, 'ArrowRight')).toEqual({ focus: 1 });
    expect(treeKey(items, 4, 'ArrowRight')).toBeNull();
  });
  it('waits for the children of an item that is still loading', () => {
    const loading = [{ level: 1, expandable: true, expanded: true }, items[3]];
    expect(treeKey(loading, 0, 'ArrowRight')).toBeNull();
  });
  it('closes an open item with Left, or moves to its parent', () => {
    expect(treeKey(items, 1, 'ArrowLeft')).toEqual({ collapse: 1 });
    expect(treeKey(items, 2, 'ArrowLeft')).toEqual({ focus: 1 });
    expect(treeKey(items, 3, 'ArrowLeft')).toBeNull();
  });
  it('toggles with Enter; other keys do nothing', () => {
    expect(treeKey(items, 0, 'Enter')).toEqual({ collapse: 0 });
    expect(treeKey(items, 3, 'Enter')).toEqual({ expand: 3 });
    expect(treeKey(items, 4, 'Enter')).toBeNull();
    expect(treeKey(items, 0, 'a')).toBeNull();
    expect(treeKey([], 0, 'ArrowDown')).toBeNull();
  });
});

describe('files next to the notebook', () => {
  const item = (name: string, minute: number, type = 'file') => ({
    path: `growth/${name}`,
    name,
    type,
    last_modified: `2026-05-04T10:${String(minute).padStart(2, '0')}:00Z`
  });
  const folder = [
    item('run 1.ipynb', 1, 'notebook'),
    item('20240115093000000-4', 2, 'directory'),
    item('run 1.ipynb.png', 5),
    item('run 1.ipynb.html', 6),
    item('run 1_results.csv', 4),
    item('notes.txt', 3),
    item('.hidden', 7),
    item('run 10.csv', 8),
    item('other.ipynb', 0, 'notebook')
  ];

  it('offers the files of its folder, newest first, those named after it ticked', () => {
    expect(companionFiles(folder, 'growth/run 1.ipynb', true)).toEqual([
      { path: 'growth/run 10.csv', name: 'run 10.csv', ticked: false },
      { path: 'growth/run 1.ipynb.png', name: 'run 1.ipynb.png', ticked: true },
      { path: 'growth/run 1_results.csv', name: 'run 1_results.csv', ticked: true },
      { path: 'growth/notes.txt', name: 'notes.txt', ticked: false },
      { path: 'growth/other.ipynb', name: 'other.ipynb', ticked: false }
    ]);
  });
  it('offers the HTML copy the notebook wrote when the panel makes none', () => {
    const names = companionFiles(folder, 'growth/run 1.ipynb', false).map(c => c.name);
    expect(names).toContain('run 1.ipynb.html');
  });
  it('offers at most the newest few', () => {
    const many = Array.from({ length: 30 }, (_, i) => item(`f${i}.csv`, i));
    const offered = companionFiles(many, 'growth/a.ipynb', true);
    expect(offered).toHaveLength(MAX_COMPANIONS);
    expect(offered[0].name).toBe('f29.csv');
  });
  it('a chosen file goes once, the notebook not as a file', () => {
    const request = buildSaveRequest({
      notebook: 'growth/run 1.ipynb',
      owner: { kind: 'sample', id: '/LAB/PROJ/SAMPLE1' },
      parentsText: '',
      name: '',
      notes: '',
      historyId: '',
      html: true,
      environment: true,
      files: ['growth/run 1.ipynb.png', 'growth/run 1.ipynb', 'growth/run 1.ipynb.png']
    });
    expect(typeof request !== 'string' && request.files).toEqual(['growth/run 1.ipynb.png']);
  });
});
