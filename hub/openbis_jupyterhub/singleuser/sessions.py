"""The user's server's sessions: jupyter_server's, plus kernels that start before the page.

When the ELN writes a notebook (``NotebookHandler``), the browser follows the ELN's link a
moment later, loads JupyterLab and only then asks for a session (and so a kernel) for the
notebook: the kernel's start (0.5-1 s) came after the page's load. Here the server starts
that session as soon as the notebook is written, and the page joins it.

A page that asks while that kernel is still starting must get the same session, not a
second kernel: jupyter_server records a session only once its kernel runs, so asking whether
a session exists for a path waits for a start under way for that path.
(``c.ServerApp.session_manager_class``, in the image's jupyter_server_config.py.)
"""

import asyncio

from jupyter_server.services.sessions.sessionmanager import SessionManager


class OpenBISSessionManager(SessionManager):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._starting: dict[str, asyncio.Task] = {}

    def start_for_notebook(self, path: str, kernel_name: str):
        """Starts a session with a ``kernel_name`` kernel for the notebook at ``path`` (API
        path), in the background; a failure is logged, and the page starts one as usual."""
        if path in self._starting:
            return
        task = asyncio.ensure_future(
            self.create_session(
                path=path, name=path.rsplit("/", 1)[-1], type="notebook", kernel_name=kernel_name
            )
        )
        self._starting[path] = task
        task.add_done_callback(lambda done: self._started(path, done))

    def _started(self, path: str, task: asyncio.Task):
        del self._starting[path]
        if not task.cancelled() and task.exception() is not None:
            self.log.error("openbis: the kernel for %s did not start: %s", path, task.exception())

    async def session_exists(self, path):
        starting = self._starting.get(path)
        if starting is not None:
            await asyncio.wait([starting])  # its outcome: _started
        return await super().session_exists(path)
