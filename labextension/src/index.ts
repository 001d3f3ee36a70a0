import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';

import { query, requestAPI } from './api';
import { HomeUsageItem } from './home';
import { IEnvironmentReport, environmentLines, isPermId } from './logic';
import { EnvironmentBanner, IHost, OpenbisPanel, reasonOf } from './panel';

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

const plugin: JupyterFrontEndPlugin<void> = {
  id: '@openbis-jupyterhub/jupyterlab-openbis:plugin',
  description: 'openBIS inside JupyterLab: session, browse, download, save, re-open.',
  autoStart: true,
  requires: [IDefaultFileBrowser, IDocumentManager, INotebookTracker],
  optional: [ICommandPalette, ILayoutRestorer, IStatusBar],
  activate: (
    app: JupyterFrontEnd,
    browser: IDefaultFileBrowser,
    docManager: IDocumentManager,
    notebooks: INotebookTracker,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    statusBar: IStatusBar | null
  ) => {
    const host: IHost = {
      currentFolder: () => browser.model.path,
      selectedFiles: () =>
        Array.from(browser.selectedItems())
          .filter(item => item.type !== 'directory')
          .map(item => item.path),
      currentNotebook: () => {
        const nb = notebooks.currentWidget;
        return nb ? { path: nb.context.path, save: () => nb.context.save() } : null;
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

    if (statusBar) {
      const home = new HomeUsageItem();
      statusBar.registerStatusItem('@openbis-jupyterhub/jupyterlab-openbis:home', {
        item: home,
        align: 'left',
        rank: 100
      });
      app.serviceManager.contents.fileChanged.connect(() => home.refreshSoon());
    }
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

export default plugin;
