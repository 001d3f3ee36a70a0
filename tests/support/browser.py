"""Loading JupyterLab pages in Chromium on a host where Docker is busy.

Chromium aborts every request in flight with ERR_NETWORK_CHANGED when the host's network
addresses change, as they do whenever Docker creates or removes a network or starts a
container on this host (a new bridge address, a veth's IPv6 link-local address). Notebook 7
loads ~110 files; one aborted script leaves the page blank or half-working for good. A person
reloads such a page, and so does this: for that error only, within the same time limit. A
user's browser sits on another host and never sees it.
"""

import time
import warnings

from playwright.sync_api import Error as PlaywrightError

# Debian's headless Chromium as the tests and benchmarks launch it
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# a notebook's kernel is idle: JupyterLab's execution indicator, or Notebook 7's kernel status
KERNEL_IDLE = (
    '.jp-Notebook-ExecutionIndicator[data-status="idle"],'
    ' .jp-Toolbar-kernelStatus[title="Kernel Idle"]'
)


class NetworkChanges:
    """Watches a browser context for requests aborted by ERR_NETWORK_CHANGED (attach it before
    the page starts loading)."""

    def __init__(self, context):
        self.aborted = []
        context.on("requestfailed", self._failed)

    def _failed(self, request):
        if "ERR_NETWORK_CHANGED" in (request.failure or ""):
            self.aborted.append(request.url)

    def load(self, page, navigate, ready, timeout=120_000):
        """``navigate(first)`` (re)loads ``page`` (``first``: the initial load, which may be
        under way already); returns once ``ready()``, reloading when a load was aborted."""
        deadline = time.monotonic() + timeout / 1000
        reloads = 0
        first, after_abort = True, False
        while time.monotonic() < deadline:
            if not first:
                self.aborted.clear()
            try:
                navigate(first)
            except PlaywrightError as e:
                if "ERR_NETWORK_CHANGED" not in str(e):
                    # or Chromium's error page took the tab first ("interrupted by another
                    # navigation to chrome-error://"): then the failed request says why, or
                    # else the error page itself (its error code). Right after a reload it
                    # can also be the error page of the load aborted before, still coming
                    # (seen: no new failed request, the tab still at the reload's address).
                    page.wait_for_timeout(500)
                    if "chrome-error://" not in str(e) or not (
                        after_abort or self.aborted or "ERR_NETWORK_CHANGED" in error_page(page)
                    ):
                        raise
                self.aborted.append(page.url)
            first = False
            while time.monotonic() < deadline and not self.aborted:
                if ready():
                    if reloads:
                        warnings.warn(
                            f"{reloads} reload(s) after ERR_NETWORK_CHANGED", stacklevel=2
                        )
                    return page
                page.wait_for_timeout(200)
            after_abort = bool(self.aborted)
            reloads += after_abort
        raise AssertionError(
            f"the page was not ready within {timeout / 1000} s ({reloads} reloads after "
            f"ERR_NETWORK_CHANGED, last aborted: {self.aborted[:3]})"
        )


def error_page(page) -> str:
    """The text of the tab's page when it is Chromium's own error page, else ''."""
    try:
        return page.content() if page.url.startswith("chrome-error://") else ""
    except PlaywrightError:  # navigating again
        return ""
