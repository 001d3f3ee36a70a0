"""Everything the double remembers, in memory: users, sessions and tokens, datasets (seeded
and created), session workspaces, fast-download sessions and request counts."""

import itertools
import secrets
import threading
import time
from collections import Counter
from datetime import datetime

from . import seed
from .jsonrpc import INVALID_SESSION, RpcError


class Session:
    def __init__(self, token, user, pat):
        self.token = token
        self.user = user
        self.pat = pat
        self.last_used = time.monotonic()


class State:
    """Everything the double remembers; every public method takes the lock."""

    def __init__(self, api_version="3.7", session_timeout=3600.0):
        self.api_version = api_version
        self.session_timeout = session_timeout
        self.lock = threading.RLock()
        self.users = dict(seed.USERS)
        self.eln = None  # eln.ElnSettings when the ELN stand-in is on (--eln-port)
        self.reset()

    def reset(self):
        with self.lock:
            self.sessions = {}
            self.datasets = {
                perm_id: dict(spec, permId=perm_id, parents=[], registrator="admin")
                for perm_id, spec in seed.DATASETS.items()
            }
            self.created = []
            self.workspaces = {}  # token -> {workspace path: bytearray}
            self.transfer_users = {}  # fileTransferUserSessionId -> (token, [item ids])
            self.downloads = {}  # downloadSessionId -> fast download state
            self.request_counts = Counter()
            self.perm_id_counter = itertools.count(1)
            self.observers = set()  # users with read-only rights (SPACE_OBSERVER)

    # --- sessions -----------------------------------------------------------------------

    def new_token(self, user, pat=False):
        now = datetime.now()
        stamp = now.strftime("%y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"
        token = f"{user}-{stamp}x{secrets.token_hex(16).upper()}"
        if pat:
            token = "$pat-" + token
        with self.lock:
            self.sessions[token] = Session(token, user, pat)
        return token

    def login(self, user, password):
        with self.lock:
            if not isinstance(user, str) or self.users.get(user) != password:
                return None
        return self.new_token(user)

    def session(self, token):
        """The live session for token, or an RpcError worded like openBIS's session manager."""
        with self.lock:
            session = self.sessions.get(token) if isinstance(token, str) else None
            if session is None:
                raise RpcError(
                    f"Session token '{token}' is invalid: user is not logged in.", INVALID_SESSION
                )
            if not session.pat and time.monotonic() - session.last_used > self.session_timeout:
                del self.sessions[token]
                raise RpcError("Session no longer available. Please login again.", INVALID_SESSION)
            session.last_used = time.monotonic()
            return session

    def is_active(self, token):
        try:
            self.session(token)
        except RpcError:
            return False
        return True

    def expire(self, user=None, token=None):
        with self.lock:
            doomed = [
                t for t, s in self.sessions.items() if t == token or (user and s.user == user)
            ]
            for t in doomed:
                del self.sessions[t]
                self.workspaces.pop(t, None)
            return len(doomed)

    def logout(self, token):
        with self.lock:
            self.sessions.pop(token, None)
            self.workspaces.pop(token, None)

    def new_perm_id(self):
        stamp = datetime.now().strftime("%Y%m%d%H%M%S%f")[:17]
        return f"{stamp}-{1000 + next(self.perm_id_counter)}"
