"""An openBIS test double: the wire protocol unmodified pyBIS 1.37.5 speaks, nothing more.

One process plays the application server (AS v3 and query v1 JSON-RPC), the data store
server (DSS v3 JSON-RPC, session-workspace upload, legacy GET download) and the fast
download file server, all on one port. State lives in memory. A test-only JSON API under
/__double__/ lets tests expire sessions, add users, mint personal access tokens and read
back what pyBIS registered. See README.md for the full description.
"""

import binascii
import hashlib
import http.server
import itertools
import json
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import traceback
import uuid
from collections import Counter, deque
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

from . import seed

AS_V3 = "/openbis/openbis/rmi-application-server-v3.json"
QUERY_V1 = "/openbis/openbis/rmi-query-v1.json"
DSS_V3 = "/datastore_server/rmi-data-store-server-v3.json"
UPLOAD = "/datastore_server/session_workspace_file_upload"
FAST_DOWNLOAD = "/datastore_server/fast_download"
DSS_PREFIX = "/datastore_server/"
CONTROL_PREFIX = "/__double__/"

FAST_DOWNLOAD_CHUNK = 1024 * 1024
REGISTRATION_MS = 1705307400000  # 2024-01-15 09:30 UTC, the seed permIds' timestamp
INVALID_SESSION = "ch.systemsx.cisd.common.exceptions.InvalidSessionException"
USER_FAILURE = "ch.systemsx.cisd.common.exceptions.UserFailureException"
AUTHORIZATION_FAILURE = "ch.systemsx.cisd.common.exceptions.AuthorizationFailureException"


class RpcError(Exception):
    """Becomes an openBIS-style JSON-RPC error (HTTP 200, pyBIS raises ValueError)."""

    def __init__(self, message, exception_type=USER_FAILURE, code=0):
        super().__init__(message)
        self.message = message
        self.exception_type = exception_type
        self.code = code


def signed_crc32(data):
    """openBIS reports CRC32 checksums as signed Java ints."""
    value = binascii.crc32(data)
    return value - (1 << 32) if value >= 1 << 31 else value


def _now_ms():
    return int(time.time() * 1000)


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


# --- DTOs: full nested objects, as pyBIS parses them ------------------------------------


def person_dto(user_id):
    return {
        "@type": "as.dto.person.Person",
        "permId": {"@type": "as.dto.person.id.PersonPermId", "permId": user_id},
        "userId": user_id,
        "firstName": user_id,
        "lastName": "Double",
        "email": f"{user_id.lower()}@openbis-double.invalid",
        "registrationDate": REGISTRATION_MS,
        "active": True,
        "space": None,
    }


def _common(code, registrator="admin", registered=REGISTRATION_MS):
    return {
        "code": code,
        "registrator": person_dto(registrator),
        "registrationDate": registered,
        "modifier": person_dto(registrator),
        "modificationDate": registered,
        "frozen": False,
    }


def space_dto():
    return {
        "@type": "as.dto.space.Space",
        **_common(seed.SPACE),
        "permId": {"@type": "as.dto.space.id.SpacePermId", "permId": seed.SPACE},
        "description": "Seeded space",
        "frozenForProjects": False,
        "frozenForSamples": False,
    }


def project_dto():
    return {
        "@type": "as.dto.project.Project",
        **_common(seed.PROJECT.rsplit("/", 1)[1]),
        "permId": {"@type": "as.dto.project.id.ProjectPermId", "permId": seed.PROJECT_PERM_ID},
        "identifier": {"@type": "as.dto.project.id.ProjectIdentifier", "identifier": seed.PROJECT},
        "space": space_dto(),
        "description": "Seeded project",
        "leader": None,
        "attachments": [],
        "frozenForExperiments": False,
        "frozenForSamples": False,
    }


def property_type_dto(code):
    label, data_type = seed.PROPERTY_TYPES[code]
    return {
        "@type": "as.dto.property.PropertyType",
        "code": code,
        "permId": {"@type": "as.dto.property.id.PropertyTypePermId", "permId": code},
        "label": label,
        "description": label,
        "dataType": data_type,
        "managedInternally": code.startswith("$"),
        "multiValue": False,
        "metaData": {},
        "vocabulary": None,
        "materialType": None,
        "sampleType": None,
        "schema": None,
        "transformation": None,
        "semanticAnnotations": [],
        "registrator": person_dto("system"),
        "registrationDate": REGISTRATION_MS,
    }


_ENTITY_KINDS = {
    "DATA_SET": ("as.dto.dataset.DataSetType", seed.DATASET_TYPES),
    "EXPERIMENT": ("as.dto.experiment.ExperimentType", seed.EXPERIMENT_TYPES),
    "SAMPLE": ("as.dto.sample.SampleType", seed.SAMPLE_TYPES),
}


def entity_type_dto(kind, code):
    dto_type, types = _ENTITY_KINDS[kind]
    type_perm_id = {
        "@type": "as.dto.entitytype.id.EntityTypePermId",
        "permId": code,
        "entityKind": kind,
    }
    dto = {
        "@type": dto_type,
        "code": code,
        "permId": type_perm_id,
        "description": f"{code} (openBIS test double)",
        "modificationDate": REGISTRATION_MS,
        "validationPlugin": None,
        "propertyAssignments": [
            {
                "@type": "as.dto.property.PropertyAssignment",
                "permId": {
                    "@type": "as.dto.property.id.PropertyAssignmentPermId",
                    "entityTypeId": type_perm_id,
                    "propertyTypeId": {
                        "@type": "as.dto.property.id.PropertyTypePermId",
                        "permId": prop,
                    },
                },
                "propertyType": property_type_dto(prop),
                "mandatory": False,
                "showInEditView": True,
                "showRawValueInForms": False,
                "section": None,
                "ordinal": ordinal,
                "initialValueForExistingEntities": None,
                "plugin": None,
                "registrator": person_dto("system"),
                "registrationDate": REGISTRATION_MS,
            }
            for ordinal, prop in enumerate(types[code], start=1)
        ],
    }
    if kind == "DATA_SET":
        dto.update(
            kind="PHYSICAL",
            mainDataSetPattern=None,
            mainDataSetPath=None,
            disallowDeletion=False,
        )
    if kind == "SAMPLE":
        dto.update(
            autoGeneratedCode=False,
            generatedCodePrefix="S",
            subcodeUnique=False,
            listable=True,
            showContainer=False,
            showParents=True,
            showParentMetadata=False,
        )
    return dto


def _type_ref(kind, code):
    """The entity type as embedded in an entity (pyBIS fetches the full type separately)."""
    dto = entity_type_dto(kind, code)
    dto.pop("propertyAssignments")
    return dto


def data_store_dto(base_url):
    return {
        "@type": "as.dto.datastore.DataStore",
        "code": seed.DATA_STORE_CODE,
        "permId": {"@type": "as.dto.datastore.id.DataStorePermId", "permId": seed.DATA_STORE_CODE},
        "downloadUrl": base_url,
        "remoteUrl": base_url,
        "registrationDate": REGISTRATION_MS,
        "modificationDate": REGISTRATION_MS,
    }


class Double:
    """Answers requests against one State; the HTTP handler only moves bytes."""

    def __init__(self, state):
        self.state = state

    # --- entities -------------------------------------------------------------------------

    def experiment_dto(self, base_url, with_datasets=True):
        dto = {
            "@type": "as.dto.experiment.Experiment",
            **_common(seed.EXPERIMENT.rsplit("/", 1)[1]),
            "permId": {
                "@type": "as.dto.experiment.id.ExperimentPermId",
                "permId": seed.EXPERIMENT_PERM_ID,
            },
            "identifier": {
                "@type": "as.dto.experiment.id.ExperimentIdentifier",
                "identifier": seed.EXPERIMENT,
            },
            "type": _type_ref("EXPERIMENT", "COLLECTION"),
            "project": project_dto(),
            "properties": {"$NAME": "Experiment 1"},
            "tags": [],
            "attachments": [],
            "samples": [],
            "frozenForDataSets": False,
            "frozenForSamples": False,
        }
        if with_datasets:
            dto["dataSets"] = [
                self.dataset_dto(p, base_url, shallow=True)
                for p, d in self.state.datasets.items()
                if d["experiment"] == seed.EXPERIMENT
            ]
        return dto

    def sample_dto(self, base_url, with_datasets=True):
        dto = {
            "@type": "as.dto.sample.Sample",
            **_common(seed.SAMPLE.rsplit("/", 1)[1]),
            "permId": {"@type": "as.dto.sample.id.SamplePermId", "permId": seed.SAMPLE_PERM_ID},
            "identifier": {
                "@type": "as.dto.sample.id.SampleIdentifier",
                "identifier": seed.SAMPLE,
            },
            "type": _type_ref("SAMPLE", "EXPERIMENTAL_STEP"),
            "project": project_dto(),
            "space": space_dto(),
            "experiment": self.experiment_dto(base_url, with_datasets=False),
            "properties": {"$NAME": "Sample 1", "NOTES": "Seeded object"},
            "parents": [],
            "children": [],
            "components": [],
            "container": None,
            "tags": [],
            "attachments": [],
            "frozenForComponents": False,
            "frozenForChildren": False,
            "frozenForParents": False,
            "frozenForDataSets": False,
        }
        if with_datasets:
            dto["dataSets"] = [
                self.dataset_dto(p, base_url, shallow=True)
                for p, d in self.state.datasets.items()
                if d["sample"] == seed.SAMPLE
            ]
        return dto

    def dataset_dto(self, perm_id, base_url, shallow=False):
        record = self.state.datasets[perm_id]
        registered = record.get("registered", REGISTRATION_MS)
        dto = {
            "@type": "as.dto.dataset.DataSet",
            **_common(perm_id, record["registrator"], registered),
            "permId": {"@type": "as.dto.dataset.id.DataSetPermId", "permId": perm_id},
            "type": _type_ref("DATA_SET", record["type"]),
            "kind": "PHYSICAL",
            "properties": dict(record["properties"]),
            "dataStore": data_store_dto(base_url),
            "physicalData": {
                "@type": "as.dto.dataset.PhysicalData",
                "shareId": "1",
                "location": f"{seed.DATA_STORE_CODE}/{perm_id}",
                "size": sum(len(b) for b in record["files"].values()),
                "status": "AVAILABLE",
                "presentInArchive": False,
                "storageConfirmation": True,
                "speedHint": -50,
                "archivingRequested": False,
            },
            "linkedData": None,
            "tags": [],
            "accessDate": registered,
            "dataProducer": None,
            "dataProductionDate": None,
            "measured": record["type"] == "RAW_DATA",
            "postRegistered": True,
            "frozenForChildren": False,
            "frozenForParents": False,
            "frozenForComponents": False,
            "frozenForContainers": False,
            "components": [],
            "containers": [],
        }
        if shallow:
            return dto
        dto["experiment"] = (
            self.experiment_dto(base_url, with_datasets=False) if record["experiment"] else None
        )
        dto["sample"] = self.sample_dto(base_url, with_datasets=False) if record["sample"] else None
        dto["parents"] = [
            self.dataset_dto(p, base_url, shallow=True)
            for p in record["parents"]
            if p in self.state.datasets
        ]
        dto["children"] = [
            self.dataset_dto(p, base_url, shallow=True)
            for p, d in self.state.datasets.items()
            if perm_id in d["parents"]
        ]
        return dto

    # --- search criteria ----------------------------------------------------------------
    # A small evaluator for the criteria pyBIS builds: code / permId / identifier leaves,
    # AND/OR, and nested criteria for related entities. Criteria it does not know match.

    _RELATIONS = {
        "ExperimentSearchCriteria": "experiment",
        "SampleSearchCriteria": "sample",
        "DataSetSearchCriteria": "dataSet",
        "ProjectSearchCriteria": "project",
        "SpaceSearchCriteria": "space",
    }

    def _view(self, kind, key):
        """A flat description of an entity for the criteria evaluator."""
        if kind == "dataSet":
            record = self.state.datasets[key]
            return {
                "kind": "dataSet",
                "code": key,
                "permId": key,
                "type": record["type"],
                "properties": record["properties"],
                "experiment": self._view("experiment", None) if record["experiment"] else None,
                "sample": self._view("sample", None) if record["sample"] else None,
            }
        if kind == "experiment":
            return {
                "kind": "experiment",
                "code": "EXP1",
                "permId": seed.EXPERIMENT_PERM_ID,
                "identifier": seed.EXPERIMENT,
                "type": "COLLECTION",
                "properties": {"$NAME": "Experiment 1"},
                "project": self._view("project", None),
                "space": self._view("space", seed.SPACE),
            }
        if kind == "sample":
            return {
                "kind": "sample",
                "code": "SAMPLE1",
                "permId": seed.SAMPLE_PERM_ID,
                "identifier": seed.SAMPLE,
                "type": "EXPERIMENTAL_STEP",
                "properties": {"$NAME": "Sample 1", "NOTES": "Seeded object"},
                "experiment": self._view("experiment", None),
                "project": self._view("project", None),
                "space": self._view("space", seed.SPACE),
            }
        if kind == "project":
            return {
                "kind": "project",
                "code": "PROJ",
                "permId": seed.PROJECT_PERM_ID,
                "identifier": seed.PROJECT,
                "space": self._view("space", seed.SPACE),
            }
        return {"kind": kind, "code": key, "permId": key}  # spaces and entity types

    def matches(self, view, criteria):
        if view is None:
            return False
        if not isinstance(criteria, dict):
            return True
        crit_type = str(criteria.get("@type", "")).rsplit(".", 1)[-1]
        relation = self._RELATIONS.get(crit_type)
        if crit_type.endswith("TypeSearchCriteria"):
            if view["kind"].endswith("Type"):
                relation = None
            else:
                view = {"kind": "entityType", "code": view.get("type"), "permId": view.get("type")}
        elif relation and relation != view["kind"]:
            view = view.get(relation)
            if view is None:
                return False
        field = criteria.get("fieldName")
        if field is None and crit_type in ("CodeSearchCriteria", "PermIdSearchCriteria"):
            field = "code"  # pyBIS's code criteria carry no field name
        value = (criteria.get("fieldValue") or {}).get("value")
        if criteria.get("fieldType") == "PROPERTY" and isinstance(value, str):
            # string property equal to a value; '*' is a wildcard when useWildcards is set
            actual = str((view.get("properties") or {}).get(str(field).upper(), ""))
            if criteria.get("useWildcards"):
                pattern = ".*".join(re.escape(part) for part in value.split("*"))
                return re.fullmatch(pattern, actual, re.IGNORECASE | re.DOTALL) is not None
            return actual == value
        if field in ("code", "perm_id", "permId", "identifier", "id") and isinstance(value, str):
            wanted = value.upper()
            candidates = {str(view.get(k, "")).upper() for k in ("code", "permId", "identifier")}
            return wanted in candidates
        children = criteria.get("criteria") or []
        if not children:
            return True
        results = [self.matches(view, c) for c in children]
        return any(results) if criteria.get("operator") == "OR" else all(results)

    # --- AS v3 --------------------------------------------------------------------------

    AS_METHODS = frozenset(
        """login logout isSessionActive getSessionInformation getServerInformation
        searchDataStores getDataSets getExperiments getSamples getProjects getSpaces
        getPropertyTypes getDataSetTypes getExperimentTypes getSampleTypes
        searchDataSetTypes searchExperimentTypes searchSampleTypes searchDataSets
        searchExperiments searchSamples searchSpaces searchProjects
        createPermIdStrings""".split()
    )

    def as_v3(self, method, params, base_url):
        if method not in self.AS_METHODS:
            raise _method_not_found(method)
        state = self.state
        if method == "login":
            user, password = (list(params) + [None, None])[:2]
            return state.login(user, password)
        if method == "isSessionActive":
            return state.is_active(params[0] if params else None)
        session = state.session(params[0] if params else None)
        if method == "logout":
            state.logout(session.token)
            return None
        if method == "getSessionInformation":
            return {
                "@type": "as.dto.session.SessionInformation",
                "sessionToken": session.token,
                "userName": session.user,
                "homeGroupCode": None,
                "personalAccessTokenSession": session.pat,
                "personalAccessTokenSessionName": "openbis-double" if session.pat else None,
                "person": person_dto(session.user),
                "creatorPerson": person_dto(session.user),
            }
        if method == "getServerInformation":
            return {
                "api-version": state.api_version,
                "openbis-version": "20.10.7",
                "project-samples-enabled": "true",
                "archiving-configured": "false",
                "enabled-technologies": "eln-lims",
                "authentication-service": "file-authentication-service",
                "create-continuous-sample-codes": "false",
                "personal-access-tokens-enabled": "true",
                "personal-access-tokens-max-validity-period": "2592000",
                "personal-access-tokens-validity-warning-period": "432000",
                "openbis.support.email": "support@openbis-double.invalid",
            }
        if method == "searchDataStores":
            return {"objects": [data_store_dto(base_url)], "totalCount": 1}
        if method == "getDataSets":
            return self._get_many(params, lambda ident: self._find_dataset(ident, base_url))
        if method == "getExperiments":
            return self._get_many(params, lambda ident: self._find_experiment(ident, base_url))
        if method == "getSamples":
            return self._get_many(params, lambda ident: self._find_sample(ident, base_url))
        if method == "getProjects":
            return self._get_many(params, self._find_project)
        if method == "getSpaces":
            return self._get_many(
                params, lambda ident: space_dto() if ident.get("permId") == seed.SPACE else None
            )
        if method == "getPropertyTypes":
            return self._get_many(
                params,
                lambda ident: (
                    property_type_dto(ident["permId"])
                    if ident.get("permId") in seed.PROPERTY_TYPES
                    else None
                ),
            )
        for kind, (_, types) in _ENTITY_KINDS.items():
            noun = {"DATA_SET": "DataSet", "EXPERIMENT": "Experiment", "SAMPLE": "Sample"}[kind]
            if method == f"get{noun}Types":
                return self._get_many(
                    params,
                    lambda ident, kind=kind, types=types: (
                        entity_type_dto(kind, ident["permId"])
                        if ident.get("permId") in types
                        else None
                    ),
                )
            if method == f"search{noun}Types":
                criteria = params[1] if len(params) > 1 else {}
                found = [
                    entity_type_dto(kind, code)
                    for code in types
                    if self.matches(self._view(noun[0].lower() + noun[1:] + "Type", code), criteria)
                ]
                return {"objects": found, "totalCount": len(found)}
        if method == "searchDataSets":
            criteria = params[1] if len(params) > 1 else {}
            found = [
                self.dataset_dto(p, base_url)
                for p in state.datasets
                if self.matches(self._view("dataSet", p), criteria)
            ]
            return {"objects": found, "totalCount": len(found)}
        if method == "searchExperiments":
            criteria = params[1] if len(params) > 1 else {}
            found = [self.experiment_dto(base_url)]
            found = found if self.matches(self._view("experiment", None), criteria) else []
            return {"objects": found, "totalCount": len(found)}
        if method == "searchSamples":
            criteria = params[1] if len(params) > 1 else {}
            found = [self.sample_dto(base_url)]
            found = found if self.matches(self._view("sample", None), criteria) else []
            return {"objects": found, "totalCount": len(found)}
        if method == "searchSpaces":
            criteria = params[1] if len(params) > 1 else {}
            found = [space_dto()] if self.matches(self._view("space", seed.SPACE), criteria) else []
            return {"objects": found, "totalCount": len(found)}
        if method == "searchProjects":
            criteria = params[1] if len(params) > 1 else {}
            found = [project_dto()] if self.matches(self._view("project", None), criteria) else []
            return {"objects": found, "totalCount": len(found)}
        if method == "createPermIdStrings":
            count = params[1] if len(params) > 1 and isinstance(params[1], int) else 1
            return [state.new_perm_id() for _ in range(max(0, min(count, 1000)))]
        raise _method_not_found(method)

    @staticmethod
    def _get_many(params, find):
        """get* methods: a map keyed by the id as sent, leaving out what does not exist."""
        ids = params[1] if len(params) > 1 and isinstance(params[1], list) else []
        result = {}
        for ident in ids:
            if not isinstance(ident, dict):
                continue
            key = ident.get("permId") or ident.get("identifier")
            if not isinstance(key, str):
                continue
            found = find(ident)
            if found is not None:
                result[key] = found
        return result

    def _find_dataset(self, ident, base_url):
        perm_id = ident.get("permId")
        return self.dataset_dto(perm_id, base_url) if perm_id in self.state.datasets else None

    def _find_experiment(self, ident, base_url):
        if ident.get("permId") == seed.EXPERIMENT_PERM_ID or ident.get("identifier") == (
            seed.EXPERIMENT
        ):
            return self.experiment_dto(base_url)
        return None

    def _find_sample(self, ident, base_url):
        if ident.get("permId") == seed.SAMPLE_PERM_ID or ident.get("identifier") == seed.SAMPLE:
            return self.sample_dto(base_url)
        return None

    @staticmethod
    def _find_project(ident):
        if ident.get("permId") == seed.PROJECT_PERM_ID or ident.get("identifier") == seed.PROJECT:
            return project_dto()
        return None

    # --- DSS v3 -------------------------------------------------------------------------

    def dss_v3(self, method, params, base_url):
        if method not in ("searchFiles", "createFastDownloadSession", "createUploadedDataSet"):
            raise _method_not_found(method)
        session = self.state.session(params[0] if params else None)
        if method == "searchFiles":
            criteria = params[1] if len(params) > 1 else {}
            found = []
            for perm_id, record in self.state.datasets.items():
                if self.matches(
                    {"kind": "file", "dataSet": self._view("dataSet", perm_id)}, criteria
                ):
                    found.extend(self._file_dtos(perm_id, record, base_url))
            return {"objects": found, "totalCount": len(found)}
        if method == "createFastDownloadSession":
            return self._create_fast_download_session(session, params, base_url)
        if method == "createUploadedDataSet":
            return self._create_uploaded_dataset(session, params)
        raise _method_not_found(method)

    @staticmethod
    def _file_dtos(perm_id, record, base_url):
        entries = {"": None}
        for path, data in record["files"].items():
            parts = path.split("/")
            for i in range(1, len(parts)):
                entries.setdefault("/".join(parts[:i]), None)
            entries[path] = data
        dtos = []
        for path, data in sorted(entries.items()):
            ds_id = {"@type": "as.dto.dataset.id.DataSetPermId", "permId": perm_id}
            dtos.append(
                {
                    "@type": "dss.dto.datasetfile.DataSetFile",
                    "permId": {
                        "@type": "dss.dto.datasetfile.id.DataSetFilePermId",
                        "dataSetId": ds_id,
                        "filePath": path,
                    },
                    "dataSetPermId": ds_id,
                    "dataStore": data_store_dto(base_url),
                    "path": path,
                    "directory": data is None,
                    "fileLength": len(data) if data is not None else 0,
                    "checksumCRC32": signed_crc32(data) if data is not None else 0,
                    "checksum": None,
                    "checksumType": None,
                }
            )
        return dtos

    def _create_fast_download_session(self, session, params, base_url):
        file_ids = params[1] if len(params) > 1 and isinstance(params[1], list) else []
        items = []
        for file_id in file_ids:
            item = file_id.get("filePath") if isinstance(file_id, dict) else None
            perm_id, _, path = str(item).partition("/")
            if path not in self.state.datasets.get(perm_id, {}).get("files", {}):
                raise RpcError(f"File '{item}' does not exist.")
            items.append(file_id)
        transfer_user = uuid.uuid4().hex
        with self.state.lock:
            self.state.transfer_users[transfer_user] = (
                session.token,
                [f["filePath"] for f in items],
            )
        return {
            "@type": "dss.dto.datasetfile.fastdownload.FastDownloadSession",
            "downloadUrl": base_url + FAST_DOWNLOAD,
            "fileTransferUserSessionId": transfer_user,
            "files": items,
            "options": params[2] if len(params) > 2 else None,
        }

    def _create_uploaded_dataset(self, session, params):
        creation = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
        type_code = str((creation.get("typeId") or {}).get("permId", "")).upper()
        if type_code not in seed.DATASET_TYPES:
            raise RpcError(f"Unknown data set type '{type_code}'.")
        upload_id = creation.get("uploadId")
        workspace = self.state.workspaces.get(session.token, {})
        prefix = f"{upload_id}/"
        files = {
            "original/" + path[len(prefix) :]: bytes(data)
            for path, data in workspace.items()
            if isinstance(upload_id, str) and path.startswith(prefix)
        }
        if not files:
            raise RpcError(f"No uploaded files found for upload id '{upload_id}'.")
        sample = (creation.get("sampleId") or {}) if isinstance(creation, dict) else {}
        experiment = creation.get("experimentId") or {}
        parents = [p.get("permId") for p in creation.get("parentIds") or [] if isinstance(p, dict)]
        perm_id = self.register(
            session,
            type_code,
            experiment=experiment.get("identifier") or experiment.get("permId"),
            sample=sample.get("permId") or sample.get("identifier"),
            parents=parents,
            properties=creation.get("properties") or {},
            files=files,
        )
        for path in [p for p in workspace if p.startswith(prefix)]:
            del workspace[path]
        return {"@type": "as.dto.dataset.id.DataSetPermId", "permId": perm_id}

    def register(self, session, type_code, experiment, sample, parents, properties, files):
        """Register a dataset the way openBIS does: the sample wins as owner; a sample
        owner implies its experiment."""
        if session.user in self.state.observers:
            raise RpcError(
                "Authorization failure: ERROR: \"None of method roles '[PROJECT_USER, SPACE_USER, "
                f"SPACE_ETL_SERVER]' could be found in roles of user '{session.user}'.\".",
                AUTHORIZATION_FAILURE,
            )
        sample_identifier = None
        if sample is not None:
            if str(sample).upper() not in (seed.SAMPLE_PERM_ID, seed.SAMPLE):
                raise RpcError(f"Object '{sample}' not found.")
            sample_identifier = seed.SAMPLE
            experiment = seed.EXPERIMENT
        elif experiment is not None:
            if str(experiment).upper() not in (seed.EXPERIMENT_PERM_ID, seed.EXPERIMENT):
                raise RpcError(f"Collection '{experiment}' not found.")
            experiment = seed.EXPERIMENT
        else:
            raise RpcError("A data set needs an experiment or a sample as its owner.")
        for parent in parents:
            if parent not in self.state.datasets:
                raise RpcError(f"Parent data set '{parent}' not found.")
        allowed = set(seed.DATASET_TYPES[type_code])
        props = {}
        for key, value in (properties or {}).items():
            code = str(key).upper()
            if code not in allowed:
                raise RpcError(f"Property type '{code}' is not assigned to type '{type_code}'.")
            if value is not None:
                props[code] = value
        with self.state.lock:
            perm_id = self.state.new_perm_id()
            self.state.datasets[perm_id] = {
                "permId": perm_id,
                "type": type_code,
                "experiment": experiment,
                "sample": sample_identifier,
                "parents": list(parents),
                "properties": props,
                "files": files,
                "registrator": session.user,
                "registered": _now_ms(),
            }
            self.state.created.append(perm_id)
        return perm_id

    # --- query v1: legacy upload (api-version <= 3.5) -----------------------------------

    def query_v1(self, method, params):
        if method != "createReportFromAggregationService":
            raise _method_not_found(method)
        session = self.state.session(params[0] if params else None)
        args = params[3] if len(params) > 3 and isinstance(params[3], dict) else {}
        if args.get("method") != "insertDataSet":
            raise RpcError(f"Unknown aggregation service method '{args.get('method')}'.")
        workspace = self.state.workspaces.get(session.token, {})
        files = {}
        for name in args.get("fileNames") or []:
            if name not in workspace:
                raise RpcError(f"File '{name}' is not in the session workspace.")
            files["original/" + name.rsplit("/", 1)[-1]] = bytes(workspace.pop(name))
        parents = [
            p.get("permId") if isinstance(p, dict) else p
            for p in args.get("parentIdentifiers") or []
        ]
        try:
            perm_id = self.register(
                session,
                str(args.get("dataSetType", "")).upper(),
                experiment=args.get("experimentIdentifier"),
                sample=args.get("sampleIdentifier"),
                parents=parents,
                properties=args.get("properties") or {},
                files=files,
            )
            row = [{"value": "OK"}, {"value": "Data set registered"}, {"value": perm_id}]
        except (RpcError, KeyError) as exc:
            row = [{"value": "ERROR"}, {"value": str(exc)}, {"value": None}]
        return {
            "@type": "QueryTableModel",
            "columns": [{"title": "STATUS"}, {"title": "MESSAGE"}, {"title": "RESULT"}],
            "rows": [row],
        }

    # --- session workspace upload -------------------------------------------------------

    def upload(self, query, body):
        """Store one (possibly partial) file upload; answer like the DSS upload servlet."""
        token = query.get("sessionID", [None])[0]
        filename = query.get("filename", [""])[0]
        start = int(query.get("startByte", ["0"])[0] or 0)
        try:
            self.state.session(token)
        except RpcError as exc:
            return f'<message type="error">{exc.message}</message>'.encode(), "text/xml"
        if not filename or ".." in filename.split("/") or start < 0:
            return b'<message type="error">Invalid file name or range</message>', "text/xml"
        with self.state.lock:
            workspace = self.state.workspaces.setdefault(token, {})
            data = workspace.setdefault(filename, bytearray())
            if len(data) < start:
                data.extend(b"\0" * (start - len(data)))
            data[start : start + len(body)] = body
            size = len(data)
        answer = {
            "id": int(query.get("id", ["1"])[0] or 1),
            "startByte": start,
            "endByte": start + len(body),
            "filename": filename,
            "size": size,
            "status": "ok",
        }
        return json.dumps(answer).encode(), "application/json"

    # --- fast download (file server) ----------------------------------------------------

    def fast_download(self, body):
        """The file-server protocol of fast download; returns (bytes, content type)."""
        try:
            params = {k: v[0] if isinstance(v, list) else v for k, v in json.loads(body).items()}
        except (ValueError, AttributeError, IndexError):
            return _json_bytes({"error": "Malformed request", "retriable": False})
        method = params.get("method")
        self.state.request_counts[f"fastDownload:{method}"] += 1
        if method == "startDownloadSession":
            return _json_bytes(self._start_download_session(params))
        download = self.state.downloads.get(params.get("downloadSessionId"))
        if download is None:
            return _json_bytes({"error": "Unknown download session", "retriable": False})
        if method == "queue":
            for chunk_range in str(params.get("ranges", "")).split(","):
                first, _, last = chunk_range.strip().partition(":")
                if first.isdigit() and last.isdigit():
                    with self.state.lock:
                        download["queue"].extend(range(int(first), int(last) + 1))
            return _json_bytes({})
        if method == "download":
            with self.state.lock:
                number = download["queue"].popleft() if download["queue"] else None
            if number is None:
                return _json_bytes({"error": "No chunk queued", "retriable": True})
            return download["chunks"][number](), "application/octet-stream"
        if method == "finishDownloadSession":
            with self.state.lock:
                self.state.downloads.pop(params.get("downloadSessionId"), None)
            return _json_bytes({})
        return _json_bytes({"error": f"Unknown method {method}", "retriable": False})

    def _start_download_session(self, params):
        transfer = self.state.transfer_users.get(params.get("userSessionId"))
        if transfer is None or not self.state.is_active(transfer[0]):
            return {"error": "Invalid user session", "retriable": False}
        raw_items = str(params.get("downloadItemIds", ""))
        # Protocol version 2 sends a JSON list, version 1 a comma-separated string.
        if raw_items.startswith("["):
            items = json.loads(raw_items)
        else:
            items = [i.strip() for i in raw_items.split(",")]
        chunks, ranges = [], {}
        for item in items:
            if item not in transfer[1]:
                return {"error": f"Item {item} not in this session", "retriable": False}
            perm_id, _, path = item.partition("/")
            data = self.state.datasets[perm_id]["files"][path]
            first = len(chunks)
            for offset in range(0, max(len(data), 1), FAST_DOWNLOAD_CHUNK):
                chunks.append(_chunk_maker(len(chunks), item, path, offset, data))
            ranges[item] = f"{first}:{len(chunks) - 1}"
        streams = max(1, min(int(params.get("wishedNumberOfStreams") or 1), 4))
        session_id = uuid.uuid4().hex
        with self.state.lock:
            self.state.downloads[session_id] = {"chunks": chunks, "queue": deque()}
        return {
            "downloadSessionId": session_id,
            "ranges": ranges,
            "streamIds": [f"stream-{i}" for i in range(streams)],
        }

    # --- legacy GET download ------------------------------------------------------------

    def get_file(self, path, query):
        token = query.get("sessionID", [None])[0]
        self.state.session(token)
        perm_id, _, file_path = unquote(path[len(DSS_PREFIX) :]).partition("/")
        return self.state.datasets.get(perm_id, {}).get("files", {}).get(file_path)

    # --- control API (tests only) -------------------------------------------------------

    def control(self, http_method, path, query, body):
        """Returns (status, bytes, content type)."""
        state = self.state
        name = path[len(CONTROL_PREFIX) :]
        args = json.loads(body) if body else {}
        if not isinstance(args, dict):
            return 400, *_json_bytes({"error": "expected a JSON object"})
        if http_method == "POST" and name == "expire":
            killed = state.expire(user=args.get("user"), token=args.get("token"))
            return 200, *_json_bytes({"expired": killed})
        if http_method == "POST" and name == "users":
            user, password = args.get("user"), args.get("password")
            if not isinstance(user, str) or not isinstance(password, str) or not user:
                return 400, *_json_bytes({"error": "user and password are required"})
            with state.lock:
                state.users[user] = password
            return 200, *_json_bytes({"user": user})
        if http_method == "POST" and name == "pat":
            if args.get("user") not in state.users:
                return 404, *_json_bytes({"error": "no such user"})
            return 200, *_json_bytes({"token": state.new_token(args["user"], pat=True)})
        if http_method == "POST" and name == "observer":
            if args.get("user") not in state.users:
                return 404, *_json_bytes({"error": "no such user"})
            with state.lock:
                state.observers.add(args["user"])
            return 200, *_json_bytes({"observer": args["user"]})
        if http_method == "POST" and name == "reset":
            state.reset()
            return 200, *_json_bytes({"reset": True})
        if http_method == "GET" and name == "datasets":
            with state.lock:
                return 200, *_json_bytes([self._describe(p) for p in state.created])
        match = re.fullmatch(r"datasets/([^/]+)/files/(.+)", name)
        if http_method == "GET" and match:
            data = state.datasets.get(match[1], {}).get("files", {}).get(unquote(match[2]))
            if data is None:
                return 404, *_json_bytes({"error": "no such file"})
            return 200, bytes(data), "application/octet-stream"
        if http_method == "GET" and name == "requests":
            with state.lock:
                counts = dict(state.request_counts)
            method = query.get("method", [None])[0]
            if method is not None:
                return 200, *_json_bytes({"method": method, "count": counts.get(method, 0)})
            return 200, *_json_bytes({"counts": counts})
        return 404, *_json_bytes({"error": f"unknown control call {http_method} {name}"})

    def _describe(self, perm_id):
        record = self.state.datasets[perm_id]
        owner = (
            {"sample": {"identifier": record["sample"], "permId": seed.SAMPLE_PERM_ID}}
            if record["sample"]
            else {"experiment": {"identifier": record["experiment"]}}
        )
        return {
            "permId": perm_id,
            "type": record["type"],
            "owner": owner,
            "experiment": record["experiment"],
            "sample": record["sample"],
            "parents": list(record["parents"]),
            "properties": dict(record["properties"]),
            "registrator": record["registrator"],
            "files": [
                {"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                for path, data in sorted(record["files"].items())
            ],
        }


def _chunk_maker(sequence, item_id, path, offset, data):
    """A closure building one fast-download chunk lazily (big-endian header, CRC32s)."""

    def build():
        payload = bytes(data[offset : offset + FAST_DOWNLOAD_CHUNK])
        item = item_id.encode()
        file_path = path.encode()
        header = (
            sequence.to_bytes(4, "big")
            + len(item).to_bytes(2, "big")
            + b"\0"
            + len(file_path).to_bytes(2, "big")
            + offset.to_bytes(8, "big")
            + len(payload).to_bytes(4, "big")
            + item
            + file_path
        )
        return (
            header
            + binascii.crc32(header).to_bytes(8, "big")
            + payload
            + binascii.crc32(payload).to_bytes(8, "big")
        )

    return build


def _json_bytes(obj):
    return json.dumps(obj).encode(), "application/json"


def _method_not_found(method):
    return RpcError(
        f"The method '{method}' is not found", "org.json.rpc.MethodNotFoundException", -32601
    )


class Handler(http.server.BaseHTTPRequestHandler):
    """Moves bytes between HTTP and Double; never lets an exception escape."""

    protocol_version = "HTTP/1.1"
    server_version = "openBIS-test-double"
    timeout = 60  # drop idle keep-alive connections so threads do not pile up
    double: Double  # set on the subclass made by make_server

    def setup(self):
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK add ~40 ms to every answer.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()  # applies `timeout` to the socket, so a stuck handshake ends too
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.do_handshake()

    def log_message(self, format, *args):
        # Request lines carry session tokens in query strings; never log them.
        pass

    def _base_url(self):
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"{scheme}://{host}"

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def _handle(self, http_method):
        try:
            body = self._body() if http_method == "POST" else b""
            self._route(http_method, body)
        except Exception:  # the double must answer, whatever happened
            traceback.print_exc(file=sys.stderr)
            try:
                self._send(*self._rpc_error(None, RpcError("Internal error of the test double")))
            except OSError:
                self.close_connection = True

    def _rpc_error(self, request_id, error):
        answer = {
            "id": request_id,
            "jsonrpc": "2.0",
            "error": {
                "code": error.code,
                "message": error.message,
                "data": {"exceptionTypeName": error.exception_type, "message": error.message},
            },
        }
        return 200, json.dumps(answer).encode(), "application/json"

    def _route(self, http_method, body):
        url = urlsplit(self.path)
        path, query = url.path, parse_qs(url.query)
        double = self.double
        if path.startswith(CONTROL_PREFIX):
            try:
                self._send(*double.control(http_method, path, query, body))
            except ValueError:
                self._send(400, *_json_bytes({"error": "malformed JSON"}))
            return
        if path in (AS_V3, DSS_V3, QUERY_V1) and http_method == "POST":
            self._send(*self._json_rpc(path, body))
            return
        if path == UPLOAD and http_method == "POST":
            double.state.request_counts["session_workspace_file_upload"] += 1
            self._send(200, *double.upload(query, body))
            return
        if path == FAST_DOWNLOAD and http_method == "POST":
            self._send(200, *double.fast_download(body))
            return
        if path.startswith(DSS_PREFIX) and http_method == "GET":
            double.state.request_counts["datastore_server GET"] += 1
            try:
                data = double.get_file(path, query)
            except RpcError as exc:
                self._send(401, exc.message.encode(), "text/plain")
                return
            if data is None:
                self._send(404, b"File not found", "text/plain")
            else:
                self._send(200, bytes(data), "application/octet-stream")
            return
        self._send(404, *_json_bytes({"error": f"nothing at {http_method} {path}"}))

    def _json_rpc(self, path, body):
        try:
            request = json.loads(body)
        except ValueError:
            return self._rpc_error(None, RpcError("JSON parse error", code=-32700))
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return self._rpc_error(None, RpcError("Invalid JSON-RPC request", code=-32600))
        request_id = request.get("id")
        method = request["method"]
        params = request.get("params")
        params = params if isinstance(params, list) else []
        double = self.double
        double.state.request_counts[method] += 1
        try:
            if path == AS_V3:
                result = double.as_v3(method, params, self._base_url())
            elif path == DSS_V3:
                result = double.dss_v3(method, params, self._base_url())
            else:
                result = double.query_v1(method, params)
        except RpcError as exc:
            return self._rpc_error(request_id, exc)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # Wrong shapes from a client are user errors in openBIS too, not crashes.
            return self._rpc_error(request_id, RpcError(f"Invalid request: {exc!r}"))
        answer = {"id": request_id, "jsonrpc": "2.0", "result": result}
        return 200, json.dumps(answer).encode(), "application/json"


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # Clients that hang up or fail the TLS handshake are normal; say so in one line.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            print(f"openbis-double: connection from {client_address[0]}: {exc}", file=sys.stderr)
        else:
            super().handle_error(request, client_address)


def make_server(host, port, state, ssl_context=None):
    """A ready-to-serve HTTP(S) server answering for `state`."""
    handler = type("BoundHandler", (Handler,), {"double": Double(state)})
    server = _Server((host, port), handler)
    if ssl_context is not None:
        # Handshake in the handler thread, not in accept(): one slow client must not
        # stall everyone else.
        server.socket = ssl_context.wrap_socket(
            server.socket, server_side=True, do_handshake_on_connect=False
        )
    return server
