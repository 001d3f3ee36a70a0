"""The application server's v3 JSON-RPC API (AS v3): sessions, server information and the
get* / search* look-ups pyBIS makes, dispatched through `METHODS`."""

from . import seed
from .criteria import matches, view
from .dtos import (
    ENTITY_KINDS,
    data_store_dto,
    dataset_dto,
    entity_type_dto,
    experiment_dto,
    person_dto,
    project_dto,
    property_type_dto,
    sample_dto,
    space_dto,
)
from .jsonrpc import signed_in

# --- sessions and server ------------------------------------------------------------------


def login(call):
    user, password = (list(call.params) + [None, None])[:2]
    return call.state.login(user, password)


def is_session_active(call):
    return call.state.is_active(call.token)


def logout(call, session):
    call.state.logout(session.token)


def get_session_information(call, session):
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


def get_server_information(call, session):
    return {
        "api-version": call.state.api_version,
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


def search_data_stores(call, session):
    return {"objects": [data_store_dto(call.base_url)], "totalCount": 1}


def create_perm_id_strings(call, session):
    count = call.arg(1, int, 1)
    return [call.state.new_perm_id() for _ in range(max(0, min(count, 1000)))]


# --- get*: look-ups by id -------------------------------------------------------------------


def getter(find):
    """A get* method: a map keyed by the id as sent, leaving out what does not exist.
    find(call, id dict) returns the DTO or None."""

    def get_many(call, session):
        result = {}
        for ident in call.arg(1, list, []):
            if not isinstance(ident, dict):
                continue
            key = ident.get("permId") or ident.get("identifier")
            if not isinstance(key, str):
                continue
            found = find(call, ident)
            if found is not None:
                result[key] = found
        return result

    return get_many


def find_dataset(call, ident):
    perm_id = ident.get("permId")
    datasets = call.state.datasets
    return dataset_dto(datasets, perm_id, call.base_url) if perm_id in datasets else None


def find_experiment(call, ident):
    if ident.get("permId") == seed.EXPERIMENT_PERM_ID or ident.get("identifier") == (
        seed.EXPERIMENT
    ):
        return experiment_dto(call.state.datasets, call.base_url)
    return None


def find_sample(call, ident):
    if ident.get("permId") == seed.SAMPLE_PERM_ID or ident.get("identifier") == seed.SAMPLE:
        return sample_dto(call.state.datasets, call.base_url)
    return None


def find_project(call, ident):
    if ident.get("permId") == seed.PROJECT_PERM_ID or ident.get("identifier") == seed.PROJECT:
        return project_dto()
    return None


def find_space(call, ident):
    return space_dto() if ident.get("permId") == seed.SPACE else None


def find_property_type(call, ident):
    code = ident.get("permId")
    return property_type_dto(code) if code in seed.PROPERTY_TYPES else None


def type_finder(kind):
    """find() for the entity types of `kind` (DATA_SET, EXPERIMENT, SAMPLE)."""
    types = ENTITY_KINDS[kind][1]

    def find_type(call, ident):
        code = ident.get("permId")
        return entity_type_dto(kind, code) if code in types else None

    return find_type


# --- search*: criteria ----------------------------------------------------------------------


def _search_result(found):
    return {"objects": found, "totalCount": len(found)}


def type_searcher(kind, view_kind):
    """A search*Types method for `kind`; `view_kind` names its entities for the criteria."""
    types = ENTITY_KINDS[kind][1]

    def search_types(call, session):
        criteria = call.arg(1, default={})
        datasets = call.state.datasets
        return _search_result(
            [
                entity_type_dto(kind, code)
                for code in types
                if matches(view(datasets, view_kind, code), criteria)
            ]
        )

    return search_types


def search_data_sets(call, session):
    criteria = call.arg(1, default={})
    datasets = call.state.datasets
    return _search_result(
        [
            dataset_dto(datasets, p, call.base_url)
            for p in datasets
            if matches(view(datasets, "dataSet", p), criteria)
        ]
    )


def search_experiments(call, session):
    criteria = call.arg(1, default={})
    datasets = call.state.datasets
    found = [experiment_dto(datasets, call.base_url)]
    return _search_result(found if matches(view(datasets, "experiment", None), criteria) else [])


def search_samples(call, session):
    criteria = call.arg(1, default={})
    datasets = call.state.datasets
    found = [sample_dto(datasets, call.base_url)]
    return _search_result(found if matches(view(datasets, "sample", None), criteria) else [])


def search_spaces(call, session):
    criteria = call.arg(1, default={})
    found = (
        [space_dto()] if matches(view(call.state.datasets, "space", seed.SPACE), criteria) else []
    )
    return _search_result(found)


def search_projects(call, session):
    criteria = call.arg(1, default={})
    project = view(call.state.datasets, "project", None)
    return _search_result([project_dto()] if matches(project, criteria) else [])


METHODS = {
    "login": login,
    "isSessionActive": is_session_active,
    "logout": signed_in(logout),
    "getSessionInformation": signed_in(get_session_information),
    "getServerInformation": signed_in(get_server_information),
    "searchDataStores": signed_in(search_data_stores),
    "getDataSets": signed_in(getter(find_dataset)),
    "getExperiments": signed_in(getter(find_experiment)),
    "getSamples": signed_in(getter(find_sample)),
    "getProjects": signed_in(getter(find_project)),
    "getSpaces": signed_in(getter(find_space)),
    "getPropertyTypes": signed_in(getter(find_property_type)),
    "getDataSetTypes": signed_in(getter(type_finder("DATA_SET"))),
    "getExperimentTypes": signed_in(getter(type_finder("EXPERIMENT"))),
    "getSampleTypes": signed_in(getter(type_finder("SAMPLE"))),
    "searchDataSetTypes": signed_in(type_searcher("DATA_SET", "dataSetType")),
    "searchExperimentTypes": signed_in(type_searcher("EXPERIMENT", "experimentType")),
    "searchSampleTypes": signed_in(type_searcher("SAMPLE", "sampleType")),
    "searchDataSets": signed_in(search_data_sets),
    "searchExperiments": signed_in(search_experiments),
    "searchSamples": signed_in(search_samples),
    "searchSpaces": signed_in(search_spaces),
    "searchProjects": signed_in(search_projects),
    "createPermIdStrings": signed_in(create_perm_id_strings),
}
