import { Notification } from '@jupyterlab/apputils';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { ApiError, post, query, requestAPI } from './api';
import {
  IContext,
  IEnvironmentReport,
  IJob,
  INode,
  IOwner,
  IStatus,
  DEFAULT_TYPE,
  ICompanion,
  IFolderItem,
  buildSaveRequest,
  canOwn,
  companionFiles,
  folderOf,
  hasChildren,
  isAnalysis,
  kindWord,
  nodeLabel,
  ownerLabel,
  parseParents,
  prefill,
  progressFraction,
  progressText,
  statusLines,
  treeKey
} from './logic';

/** What the panel needs from JupyterLab (index.ts provides it). */
export interface IHost {
  currentFolder(): string;
  selectedFiles(): string[];
  /** The items of a folder (an API path, "" for the home). */
  listFolder(path: string): Promise<IFolderItem[]>;
  currentNotebook(): { path: string; save(): Promise<void> } | null;
  open(path: string): Promise<void>;
  refreshFiles(): Promise<void>;
}

export interface IReopened {
  folder: string;
  notebook: string;
  environment: IEnvironmentReport;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, value);
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function button(label: string, title: string, onClick: () => void, cls = ''): HTMLButtonElement {
  const b = el('button', { type: 'button', title, class: `jp-Button jp-mod-styled ${cls}` }, label);
  b.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return b;
}

export function reasonOf(error: unknown): string {
  return error instanceof ApiError ? error.reason : String(error);
}

/** The openBIS side panel: session, tree and search, downloads, "Save to openBIS". */
export class OpenbisPanel extends Widget {
  constructor(private host: IHost) {
    super();
    this.id = 'openbis-panel';
    this.addClass('jp-OpenbisPanel');
    this.title.caption = 'openBIS';
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', 'openBIS');
    this.build();
  }

  /** The session, the tree and the save form's openBIS context are read when the panel is
   * first shown, not at every page load: in Notebook 7 (the ELN's links) the panel sits in a
   * collapsed sidebar, and those openBIS requests competed with the notebook's own loading. */
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.firstShown();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.firstShown(); // attached where it is seen at once (no after-show then)
    }
  }

  private firstShown(): void {
    if (!this.shown) {
      this.shown = true;
      void this.refresh();
      void this.notebookChanged();
    }
  }

  status: IStatus | null = null;
  owner: IOwner | null = null;

  /** Re-read the session and the top of the tree. */
  async refresh(): Promise<void> {
    try {
      this.status = await requestAPI<IStatus>('status');
    } catch (error) {
      this.status = {
        url: '',
        host: '',
        user: null,
        valid: false,
        hint: reasonOf(error)
      };
    }
    this.showStatus();
    this.tree.replaceChildren();
    if (this.status.valid) {
      await this.expand({ kind: 'root', id: '' }, this.tree, 0);
    }
  }

  /** Download a dataset into the file browser's folder, with progress. */
  async download(permId: string, folder = this.host.currentFolder()): Promise<IJob> {
    const row = el('div', { class: 'jp-OpenbisPanel-job', role: 'status' });
    const bar = el('progress', { max: '1', value: '0' });
    const text = el('span', {}, `${permId}: starting…`);
    row.append(bar, text);
    this.jobs.prepend(row);
    let job: IJob;
    try {
      job = await post<IJob>('downloads', { permId, folder });
      while (job.state === 'running') {
        bar.value = progressFraction(job);
        text.textContent = progressText(job);
        await new Promise(resolve => setTimeout(resolve, 250));
        job = await requestAPI<IJob>(`downloads/${job.id}`);
      }
    } catch (error) {
      text.textContent = `${permId}: ${reasonOf(error)}`;
      row.classList.add('jp-mod-error');
      throw error;
    }
    bar.value = progressFraction(job);
    text.textContent = progressText(job);
    if (job.state === 'failed') {
      row.classList.add('jp-mod-error');
      if (job.error?.status === 401) {
        void this.refresh();
      }
      throw new ApiError(job.error?.status ?? 500, job.error?.reason ?? 'failed');
    }
    await this.host.refreshFiles();
    return job;
  }

  /** Fetch an analysis notebook into ~/<permId>/ and open it (the banner follows). */
  async reopen(permId: string): Promise<IReopened> {
    const result = await post<IReopened>('reopen', { permId });
    await this.host.refreshFiles();
    await this.host.open(result.notebook);
    return result;
  }

  /** Fill the save form from the current notebook (ELN metadata wins over the tree), once
   * per notebook: what the user typed for it stays. */
  async notebookChanged(): Promise<void> {
    const nb = this.host.currentNotebook();
    this.form.notebook.textContent = nb ? nb.path : 'no notebook open';
    const path = nb?.path ?? null;
    if (!this.shown) {
      return;
    }
    void this.refreshCompanions();
    if (path === this.prefilledFor) {
      return;
    }
    this.prefilledFor = path;
    let context: IContext | null = null;
    if (path) {
      try {
        context = await requestAPI<IContext>(`notebook-context${query({ path })}`);
      } catch {
        context = null;
      }
    }
    if (this.prefilledFor !== path) {
      return; // another notebook became current meanwhile
    }
    const filled = prefill(context, this.owner, this.form.parents.value);
    this.setOwner(filled.owner);
    this.form.parents.value = filled.parentsText;
    this.form.name.value = filled.name;
    this.form.notes.value = filled.notes;
    this.historyId = filled.historyId;
  }

  /** Save the current notebook, its HTML copy, selected files and the environment. */
  async save(): Promise<string | null> {
    const nb = this.host.currentNotebook();
    const request = buildSaveRequest({
      notebook: nb?.path ?? null,
      owner: this.owner,
      parentsText: this.form.parents.value,
      name: this.form.name.value,
      notes: this.form.notes.value,
      historyId: this.historyId,
      html: this.form.html.checked,
      environment: this.form.environment.checked,
      files: [
        ...this.host.selectedFiles(),
        ...this.companions.filter(c => this.ticked.get(c.path)).map(c => c.path)
      ],
      type: this.form.type.value
    });
    if (typeof request === 'string') {
      this.form.message.textContent = request;
      return null;
    }
    this.form.message.textContent = 'Saving…';
    this.form.save.disabled = true;
    try {
      await nb!.save();
      const answer = await post<{ permId: string; files: string[] }>('datasets', request);
      this.form.message.textContent = `Saved as dataset ${answer.permId} (${answer.files.join(', ')}).`;
      Notification.success(`Saved to openBIS as ${answer.permId}`, { autoClose: 5000 });
      return answer.permId;
    } catch (error) {
      this.form.message.textContent = reasonOf(error);
      if (error instanceof ApiError && error.status === 401) {
        void this.refresh();
      }
      return null;
    } finally {
      this.form.save.disabled = false;
    }
  }

  setOwner(owner: IOwner | null): void {
    this.owner = owner;
    this.form.owner.textContent = ownerLabel(owner);
  }

  addParent(permId: string): void {
    const parents = parseParents(this.form.parents.value);
    if (!parents.includes(permId)) {
      parents.push(permId);
    }
    this.form.parents.value = parents.join(', ');
  }

  focusSave(): void {
    this.form.save.focus();
    void this.refreshCompanions();
  }

  /** List the files next to the current notebook, with what the user ticked kept. */
  async refreshCompanions(): Promise<void> {
    const nb = this.host.currentNotebook();
    let items: IFolderItem[] = [];
    if (nb) {
      try {
        items = await this.host.listFolder(folderOf(nb.path));
      } catch {
        items = [];
      }
    }
    if (this.host.currentNotebook()?.path !== nb?.path) {
      return; // another notebook became current meanwhile
    }
    this.companions = nb ? companionFiles(items, nb.path, this.form.html.checked) : [];
    const list = this.form.companions;
    list.replaceChildren();
    for (const file of this.companions) {
      if (!this.ticked.has(file.path)) {
        this.ticked.set(file.path, file.ticked);
      }
      const box = el('input', { type: 'checkbox' });
      box.checked = this.ticked.get(file.path) === true;
      box.addEventListener('change', () => this.ticked.set(file.path, box.checked));
      const label = el('label', {}, ` ${file.name}`);
      label.prepend(box);
      const item = el('li');
      item.append(label);
      list.append(item);
    }
    list.hidden = !this.companions.length;
    this.form.companionsNone.hidden = this.companions.length > 0;
  }

  focusSearch(): void {
    this.searchInput.focus();
  }

  // --- building blocks ------------------------------------------------------------------

  private historyId = '';
  private companions: ICompanion[] = [];
  private ticked = new Map<string, boolean>(); // path -> ticked, as the user left it
  private prefilledFor: string | null = null;
  private shown = false;
  private header = el('div', { class: 'jp-OpenbisPanel-status', 'aria-live': 'polite' });
  private hint = el('div', { class: 'jp-OpenbisPanel-hint', role: 'alert' });
  private searchInput = el('input', {
    type: 'search',
    placeholder: 'code, permId or name',
    'aria-label': 'Search openBIS by code, permId or name',
    class: 'jp-mod-styled'
  });
  private results = el('ul', {
    class: 'jp-OpenbisPanel-tree',
    role: 'tree',
    'aria-label': 'Search results'
  });
  private tree = el('ul', { class: 'jp-OpenbisPanel-tree', role: 'tree', 'aria-label': 'openBIS' });
  private jobs = el('div', { class: 'jp-OpenbisPanel-jobs' });
  private form = {
    notebook: el('code', {}, 'no notebook open'),
    owner: el('span', { class: 'jp-OpenbisPanel-owner' }, 'none picked'),
    parents: el('input', {
      type: 'text',
      'aria-label': 'Parent datasets (permIds)',
      class: 'jp-mod-styled'
    }),
    name: el('input', { type: 'text', 'aria-label': 'Dataset name', class: 'jp-mod-styled' }),
    type: el('input', {
      type: 'text',
      'aria-label': 'Dataset type',
      value: DEFAULT_TYPE,
      class: 'jp-mod-styled'
    }),
    notes: el('textarea', { 'aria-label': 'Notes', rows: '2', class: 'jp-mod-styled' }),
    html: el('input', { type: 'checkbox', checked: '' }),
    environment: el('input', { type: 'checkbox', checked: '' }),
    companions: el('ul', {
      class: 'jp-OpenbisPanel-companions',
      'aria-label': 'Files next to the notebook'
    }),
    companionsNone: el('div', { class: 'jp-OpenbisPanel-note' }, 'No other files there.'),
    save: el('button', { type: 'button', class: 'jp-Button jp-mod-styled jp-mod-accept' }),
    message: el('div', { class: 'jp-OpenbisPanel-message', 'aria-live': 'polite' })
  };

  private build(): void {
    const top = el('div', { class: 'jp-OpenbisPanel-top' });
    top.append(
      this.header,
      button('Refresh', 'Check the session again and reload the tree', () => void this.refresh())
    );
    const search = el('form', { class: 'jp-OpenbisPanel-search', role: 'search' });
    search.append(
      this.searchInput,
      el('button', { type: 'submit', class: 'jp-Button jp-mod-styled' }, 'Search')
    );
    search.addEventListener('submit', event => {
      event.preventDefault();
      void this.search(this.searchInput.value);
    });

    const f = this.form;
    f.save.textContent = 'Save to openBIS';
    f.save.addEventListener('click', () => void this.save());
    f.html.addEventListener('change', () => void this.refreshCompanions());
    const saveBox = el('section', {
      class: 'jp-OpenbisPanel-save',
      'aria-label': 'Save to openBIS'
    });
    const row = (label: string, input: HTMLElement) => {
      const l = el('label', {}, label);
      l.append(input);
      return l;
    };
    saveBox.append(
      el('h3', {}, 'Save notebook to openBIS'),
      row('Notebook: ', f.notebook),
      row('Attach to: ', f.owner),
      row('Parents: ', f.parents),
      row('Name: ', f.name),
      row('Notes: ', f.notes),
      row('Type: ', f.type),
      row(' HTML copy', f.html),
      row(' Environment (Python, packages)', f.environment),
      el('h4', {}, 'Files next to the notebook'),
      button('List again', 'List the files next to the notebook again', () => {
        void this.refreshCompanions();
      }),
      f.companions,
      f.companionsNone,
      el(
        'div',
        { class: 'jp-OpenbisPanel-note' },
        'Ticked files and the files selected in the file browser are saved too.'
      ),
      f.save,
      f.message
    );
    for (const tree of [this.tree, this.results]) {
      tree.addEventListener('keydown', event => this.treeKeydown(tree, event));
      tree.addEventListener('focusin', event => {
        if (event.target instanceof HTMLLIElement) {
          rovingFocus(tree, event.target);
        }
      });
    }
    this.node.append(
      top,
      this.hint,
      search,
      this.results,
      el('h3', {}, 'Browse'),
      this.tree,
      this.jobs,
      saveBox
    );
  }

  private showStatus(): void {
    const lines = statusLines(this.status);
    this.header.textContent = lines.text;
    this.header.classList.toggle('jp-mod-ok', lines.ok);
    this.hint.textContent = lines.hint ?? '';
    this.hint.hidden = !lines.hint;
  }

  private async search(text: string): Promise<void> {
    this.results.replaceChildren(el('li', {}, 'Searching…'));
    try {
      const { items } = await requestAPI<{ items: INode[] }>(`search${query({ q: text })}`);
      this.results.replaceChildren();
      if (!items.length) {
        this.results.append(el('li', {}, `Nothing found for “${text}”.`));
      }
      for (const node of items) {
        this.results.append(this.row(node, 1));
      }
      rovingFocus(this.results, null);
    } catch (error) {
      this.results.replaceChildren(el('li', { class: 'jp-mod-error' }, reasonOf(error)));
      if (error instanceof ApiError && error.status === 401) {
        void this.refresh();
      }
    }
  }

  /** Arrow keys, Home, End and Enter on a focused tree item (the WAI-ARIA tree pattern). */
  private treeKeydown(tree: HTMLUListElement, event: KeyboardEvent): void {
    const current = event.target;
    if (!(current instanceof HTMLLIElement) || event.altKey || event.ctrlKey || event.metaKey) {
      return; // keys on an item's buttons keep their own meaning
    }
    const visible = Array.from(tree.querySelectorAll<HTMLLIElement>('li[role="treeitem"]')).filter(
      li => !li.parentElement?.closest('[hidden]')
    );
    const move = treeKey(
      visible.map(li => ({
        level: Number(li.getAttribute('aria-level')),
        expandable: li.hasAttribute('aria-expanded'),
        expanded: li.getAttribute('aria-expanded') === 'true'
      })),
      visible.indexOf(current),
      event.key
    );
    if (!move) {
      return;
    }
    event.preventDefault();
    event.stopPropagation();
    if ('focus' in move) {
      visible[move.focus].focus();
    } else {
      const index = 'expand' in move ? move.expand : move.collapse;
      visible[index]
        .querySelector<HTMLButtonElement>(
          ':scope > .jp-OpenbisPanel-line > .jp-OpenbisPanel-toggle'
        )
        ?.click();
    }
  }

  private async expand(node: INode, list: HTMLUListElement, level: number): Promise<void> {
    list.replaceChildren(el('li', {}, 'Loading…'));
    try {
      const { items } = await requestAPI<{ items: INode[] }>(
        `children${query({ kind: node.kind, id: node.id })}`
      );
      list.replaceChildren();
      if (!items.length) {
        list.append(el('li', { class: 'jp-OpenbisPanel-empty' }, '(empty)'));
      }
      for (const child of items) {
        list.append(this.row(child, level + 1));
      }
      if (list === this.tree) {
        rovingFocus(list, null);
      }
    } catch (error) {
      list.replaceChildren(el('li', { class: 'jp-mod-error' }, reasonOf(error)));
    }
  }

  /** One tree item: a toggle that loads its children on first open, and its actions. */
  private row(node: INode, level: number): HTMLLIElement {
    const li = el('li', {
      role: 'treeitem',
      'aria-level': String(level),
      'aria-label': `${kindWord(node.kind)} ${nodeLabel(node)}`,
      tabindex: '-1',
      'data-kind': node.kind,
      'data-id': node.id
    });
    const label = el('span', { class: 'jp-OpenbisPanel-label' }, nodeLabel(node));
    label.title = `${kindWord(node.kind)} ${node.id}`;
    const line = el('div', { class: 'jp-OpenbisPanel-line' });
    const children = el('ul', { role: 'group' });
    children.hidden = true;
    if (hasChildren(node.kind)) {
      li.setAttribute('aria-expanded', 'false');
      let loaded = false;
      const toggle = el(
        'button',
        {
          type: 'button',
          class: 'jp-OpenbisPanel-toggle',
          tabindex: '-1', // the item itself takes the keys (Right, Left, Enter)
          'aria-label': `Open ${kindWord(node.kind)} ${node.code || node.id}`
        },
        '▸'
      );
      toggle.addEventListener('click', () => {
        const open = children.hidden;
        children.hidden = !open;
        li.setAttribute('aria-expanded', String(open));
        toggle.textContent = open ? '▾' : '▸';
        if (open && !loaded) {
          loaded = true;
          void this.expand(node, children, level);
        }
      });
      line.append(toggle);
    }
    line.append(el('span', { class: 'jp-OpenbisPanel-kind' }, kindWord(node.kind)), label);
    if (canOwn(node)) {
      line.append(
        button('Attach here', `Save new datasets to ${node.id}`, () =>
          this.setOwner({ kind: node.kind as IOwner['kind'], id: node.id })
        )
      );
    }
    if (node.kind === 'dataset') {
      const permId = node.permId || node.id;
      line.append(
        button(
          'Download',
          "Download its files into the file browser's folder",
          () => void this.download(permId).catch(() => undefined)
        ),
        button('Parent', 'Use as a parent of the saved notebook', () => this.addParent(permId))
      );
      if (isAnalysis(node)) {
        line.append(
          button(
            'Re-open',
            'Fetch its notebook into a new folder and open it',
            () =>
              void this.reopen(permId).catch(error =>
                Notification.error(reasonOf(error), { autoClose: 8000 })
              )
          )
        );
      }
    }
    li.append(line, children);
    return li;
  }
}

/** One tab stop per tree: ``item`` (or the first item when none has it yet). */
function rovingFocus(tree: HTMLUListElement, item: HTMLLIElement | null): void {
  const items = tree.querySelectorAll<HTMLLIElement>('li[role="treeitem"]');
  const target = item ?? tree.querySelector<HTMLLIElement>('li[role="treeitem"][tabindex="0"]');
  items.forEach(li => li.setAttribute('tabindex', '-1'));
  (target ?? items[0])?.setAttribute('tabindex', '0');
}

/** The banner over a re-opened notebook: the environment it was made in beside this one. */
export class EnvironmentBanner extends Widget {
  constructor(
    report: IEnvironmentReport,
    lines: string[],
    notebookPath: string,
    fetchParent: (permId: string, folder: string) => Promise<IJob>
  ) {
    super();
    this.addClass('jp-OpenbisBanner');
    this.node.setAttribute('role', 'note');
    for (const line of lines) {
      this.node.append(el('div', {}, line));
    }
    const parents = report.dataset?.parents ?? [];
    const actions = el('div', { class: 'jp-OpenbisBanner-actions' });
    if (parents.length) {
      const fetch = button(
        `Fetch parent datasets (${parents.length})`,
        `Download ${parents.join(', ')} into ${folderOf(notebookPath) || 'the home folder'}`,
        async () => {
          fetch.disabled = true;
          for (const permId of parents) {
            try {
              await fetchParent(permId, folderOf(notebookPath));
            } catch (error) {
              Notification.error(reasonOf(error), { autoClose: 8000 });
            }
          }
          fetch.textContent = 'Parent datasets fetched';
        }
      );
      actions.append(fetch);
    }
    actions.append(button('Dismiss', 'Hide this banner', () => this.dispose()));
    this.node.append(actions);
  }
}
