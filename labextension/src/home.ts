import { Widget } from '@lumino/widgets';

import { requestAPI } from './api';
import { IHomeUsage, homeUsageText } from './logic';

/** Seconds between looks at the home (one statvfs on the server each). */
const REFRESH_SECONDS = 60;

/**
 * The status bar's "Home: 1.2 GB of 10.0 GB" (or "Disk: 40.0 GB free" where the home has no
 * limit of its own): asked every minute and shortly after each save.
 */
export class HomeUsageItem extends Widget {
  private timer = 0;
  private soon = 0;

  constructor() {
    super();
    this.addClass('jp-OpenbisHome');
    this.node.textContent = 'Home: …';
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_SECONDS * 1000);
  }

  /** Look again in a moment (after a save: saves come in bursts). */
  refreshSoon(): void {
    window.clearTimeout(this.soon);
    this.soon = window.setTimeout(() => void this.refresh(), 1000);
  }

  async refresh(): Promise<void> {
    let usage: IHomeUsage;
    try {
      usage = await requestAPI<IHomeUsage>('home');
    } catch {
      return; // the server is away: keep the last numbers
    }
    const { text, title, warn } = homeUsageText(usage);
    this.node.textContent = text;
    this.node.title = title;
    this.toggleClass('jp-mod-warn', warn);
  }

  dispose(): void {
    window.clearInterval(this.timer);
    window.clearTimeout(this.soon);
    super.dispose();
  }
}
