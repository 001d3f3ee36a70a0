import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import {
  INotebookCellExecutor,
  INotebookTracker,
  NotebookPanel,
  runCell
} from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { query, requestAPI } from './api';
import { IEnvironmentReport, IFolderItem, environmentLines, isPermId } from './logic';
import { EnvironmentBanner, IHost, OpenbisPanel, reasonOf } from './panel';
import { SaveBeforeSaving, isSavingCell } from './saving';

const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
  '<g class="jp-icon3" fill="#616161"><circle cx="8" cy="8" r="6.5" fill="none" ' +
  'stroke="#616161" stroke-width="1.5"/><circle cx="8" cy="8" r="2.5"/></g></svg>';

export const openbisIcon = new LabIcon({ name: 'openbis:logo', svgstr: ICON_SVG });

export const CommandIDs = {
  open: 'openbis:open-panel',
  search: 'openbis:search',
  refresh: 'openbis:refresh',
  save: 'openbis:save-notebook',
  download: 'openbis:download-dataset',
  reopen: 'openbis:reopen-dataset'
};

/** The notebooks' views, for the executor: set by the saver plugin (the tracker is made after
 * the executor, which JupyterLab's tracker plugin requires). */
let notebookViews: INotebookTracker | null = null;

/** A code cell's model as the executor changes it while the cell is held back. */
interface IHeldCell {
  clearExecution(): void;
  executionState: 'idle' | 'running';
  sharedModel: { transact(f: () => void, undoable?: boolean): void };
}

/** Runs cells as JupyterLab does, but saves the notebook before a cell that reads or uploads
 * its file (saving.ts). */
export const saver = new SaveBeforeSaving<INotebookCellExecutor.IRunCellOptions>({
  notebookOf: options => options.notebook,
  isSaving: ({ cell }) =>
    cell.model.type === 'code' && isSavingCell(cell.model.sharedModel.getSource()),
  run: runCell,
  save: async ({ notebook }) => {
    const view = notebookViews?.find(panel => panel.model === notebook);
    if (!view) {
      throw new Error('this notebook is not open here');
    }
    await view.context.save();
  },
  hold: ({ cell }, held) => {
    if (cell.model.type !== 'code') {
      return;
    }
    const model = cell.model as unknown as IHeldCell;
    if (held) {
      model.sharedModel.transact(() => model.clearExecution(), false);
    }
    model.executionState = held ? 'running' : 'idle';
  },
  failed: (_, reason) =>
    Notification.error(
      `This cell reads or uploads the notebook's file and was not run: the notebook could ` +
        `not be saved first (${reason}).`,
      { autoClose: false }
    )
});

/** JupyterLab's cell executor, replaced (package.json disables its default plugin). */
const executorPlugin: JupyterFrontEndPlugin<INotebookCellExecutor> = {
  id: '@openbis-jupyterhub/jupyterlab-openbis:cell-executor',
  description: 'Runs cells; saves the notebook before a cell that reads or uploads its file.',
  autoStart: true,
  provides: INotebookCellExecutor,
  activate: (): INotebookCellExecutor => ({ runCell: options => saver.runCell(options) })
};

const saverPlugin: JupyterFrontEndPlugin<void> = {
  id: '@openbis-jupyterhub/jupyterlab-openbis:save-before-saving',
  description: 'Lets the cell executor find and save the notebook a cell belongs to.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_: JupyterFrontEnd, notebooks: INotebookTracker) => {
    notebookViews = notebooks;
  }
};

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@openbis-jupyterhub/jupyterlab-openbis:plugin',
  description: 'openBIS inside JupyterLab: session, browse, download, save, re-open.',
  autoStart: true,
  requires: [IDefaultFileBrowser, IDocumentManager, INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    browser: IDefaultFileBrowser,
    docManager: IDocumentManager,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const host: IHost = {
      currentFolder: () => browser.model.path,
      selectedFiles: () =>
        Array.from(browser.selectedItems())
          .filter(item => item.type !== 'directory')
          .map(item => item.path),
      listFolder: async path => {
        const folder = await docManager.services.contents.get(path, { content: true });
        return folder.type === 'directory' ? (folder.content as IFolderItem[]) : [];
      },
      currentNotebook: () => {
        const nb = notebooks.currentWidget;
        if (!nb) {
          return null;
        }
        return {
          path: nb.context.path,
          save: async () => {
            if (nb.content.model) {
              await saver.settled(nb.content.model); // the cells queued so far, then save
            }
            await nb.context.save();
          }
        };
      },
      open: async path => {
        docManager.openOrReveal(path);
      },
      refreshFiles: () => browser.model.refresh()
    };
    const panel = new OpenbisPanel(host);
    panel.title.icon = openbisIcon;
    app.shell.add(panel, 'right', { rank: 50 }); // beside the file browser
    restorer?.add(panel, 'openbis-panel');

    const showPanel = () => app.shell.activateById(panel.id);
    notebooks.currentChanged.connect(() => void panel.notebookChanged());
    notebooks.widgetAdded.connect((_, nb) => void addBanner(nb, panel));

    const { commands } = app;
    commands.addCommand(CommandIDs.open, {
      label: 'openBIS: Show Panel',
      caption: 'Session, browse and search openBIS, save notebooks',
      icon: openbisIcon,
      execute: () => showPanel()
    });
    commands.addCommand(CommandIDs.search, {
      label: 'openBIS: Search…',
      execute: () => {
        showPanel();
        panel.focusSearch();
      }
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'openBIS: Check Session',
      execute: () => panel.refresh()
    });
    commands.addCommand(CommandIDs.save, {
      label: 'Save to openBIS…',
      caption: 'Save this notebook (HTML copy, selected files, environment) as a dataset',
      icon: openbisIcon,
      isEnabled: () => notebooks.currentWidget !== null,
      execute: async () => {
        showPanel();
        await panel.notebookChanged();
        panel.focusSave();
      }
    });
    commands.addCommand(CommandIDs.download, {
      label: 'openBIS: Download Dataset…',
      caption: "Download a dataset's files into the file browser's folder",
      execute: async () => {
        const answer = await InputDialog.getText({
          title: 'Download an openBIS dataset',
          label: `permId (files go to /${browser.model.path}, never overwriting)`
        });
        const permId = answer.value?.trim();
        if (!answer.button.accept || !permId) {
          return;
        }
        if (!isPermId(permId)) {
          Notification.error(`${permId} is not a dataset permId.`, { autoClose: 5000 });
          return;
        }
        showPanel();
        try {
          const job = await panel.download(permId);
          Notification.success(`Downloaded ${job.files.join(', ')}`, { autoClose: 5000 });
        } catch (error) {
          Notification.error(reasonOf(error), { autoClose: 8000 });
        }
      }
    });
    commands.addCommand(CommandIDs.reopen, {
      label: 'openBIS: Re-open Saved Analysis…',
      caption: 'Fetch the notebook of an ANALYSIS_NOTEBOOK dataset into a new folder and open it',
      execute: async () => {
        const answer = await InputDialog.getText({
          title: 'Re-open a saved analysis',
          label: 'permId of the ANALYSIS_NOTEBOOK dataset'
        });
        const permId = answer.value?.trim();
        if (!answer.button.accept || !permId) {
          return;
        }
        try {
          await panel.reopen(permId);
        } catch (error) {
          Notification.error(reasonOf(error), { autoClose: 8000 });
        }
      }
    });
    for (const command of Object.values(CommandIDs)) {
      palette?.addItem({ command, category: 'openBIS' });
    }
    app.contextMenu.addItem({ command: CommandIDs.save, selector: '.jp-Notebook', rank: 90 });
    commands.addKeyBinding({ command: CommandIDs.open, keys: ['Alt Shift O'], selector: 'body' });
    commands.addKeyBinding({
      command: CommandIDs.save,
      keys: ['Alt Shift S'],
      selector: '.jp-Notebook'
    });
  }
};

/** A notebook in a re-opened analysis folder gets the environment banner. */
async function addBanner(nb: NotebookPanel, panel: OpenbisPanel): Promise<void> {
  await nb.context.ready;
  let report: IEnvironmentReport;
  try {
    report = await requestAPI<IEnvironmentReport>(`environment${query({ path: nb.context.path })}`);
  } catch {
    return;
  }
  if (!report.dataset || nb.isDisposed) {
    return;
  }
  const banner = new EnvironmentBanner(
    report,
    environmentLines(report),
    nb.context.path,
    (permId, folder) => panel.download(permId, folder)
  );
  nb.contentHeader.addWidget(banner);
}

export default [executorPlugin, saverPlugin, plugin];
