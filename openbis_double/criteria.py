"""Search criteria: a small evaluator for the criteria pyBIS builds.

code / permId / identifier leaves, string properties (equal to a value; `*` is a wildcard
with `useWildcards`), AND/OR, and nested criteria for related entities (experiment, sample,
dataset, project, space, entity type). Criteria it does not know match.
Entities are compared through flat views (`view`), not through their DTOs.
"""

import re

from . import seed

_RELATIONS = {
    "ExperimentSearchCriteria": "experiment",
    "SampleSearchCriteria": "sample",
    "DataSetSearchCriteria": "dataSet",
    "ProjectSearchCriteria": "project",
    "SpaceSearchCriteria": "space",
}


def view(datasets, kind, key):
    """A flat description of an entity: kind dataSet (key: permId), experiment, sample,
    project (the seeded one; key unused), or anything else (spaces, entity types: key = code)."""
    if kind == "dataSet":
        record = datasets[key]
        return {
            "kind": "dataSet",
            "code": key,
            "permId": key,
            "type": record["type"],
            "properties": record["properties"],
            "experiment": view(datasets, "experiment", None) if record["experiment"] else None,
            "sample": view(datasets, "sample", None) if record["sample"] else None,
        }
    if kind == "experiment":
        return {
            "kind": "experiment",
            "code": "EXP1",
            "permId": seed.EXPERIMENT_PERM_ID,
            "identifier": seed.EXPERIMENT,
            "type": "COLLECTION",
            "properties": {"$NAME": "Experiment 1"},
            "project": view(datasets, "project", None),
            "space": view(datasets, "space", seed.SPACE),
        }
    if kind == "sample":
        return {
            "kind": "sample",
            "code": "SAMPLE1",
            "permId": seed.SAMPLE_PERM_ID,
            "identifier": seed.SAMPLE,
            "type": "EXPERIMENTAL_STEP",
            "properties": {"$NAME": "Sample 1", "NOTES": "Seeded object"},
            "experiment": view(datasets, "experiment", None),
            "project": view(datasets, "project", None),
            "space": view(datasets, "space", seed.SPACE),
        }
    if kind == "project":
        return {
            "kind": "project",
            "code": "PROJ",
            "permId": seed.PROJECT_PERM_ID,
            "identifier": seed.PROJECT,
            "space": view(datasets, "space", seed.SPACE),
        }
    return {"kind": kind, "code": key, "permId": key}  # spaces and entity types


def matches(entity, criteria):
    """Whether the entity `view` satisfies `criteria` (a pyBIS search criteria dict)."""
    if entity is None:
        return False
    if not isinstance(criteria, dict):
        return True
    crit_type = str(criteria.get("@type", "")).rsplit(".", 1)[-1]
    relation = _RELATIONS.get(crit_type)
    if crit_type.endswith("TypeSearchCriteria"):
        if entity["kind"].endswith("Type"):
            relation = None
        else:
            type_code = entity.get("type")
            entity = {"kind": "entityType", "code": type_code, "permId": type_code}
    elif relation and relation != entity["kind"]:
        entity = entity.get(relation)
        if entity is None:
            return False
    field = criteria.get("fieldName")
    if field is None and crit_type in ("CodeSearchCriteria", "PermIdSearchCriteria"):
        field = "code"  # pyBIS's code criteria carry no field name
    value = (criteria.get("fieldValue") or {}).get("value")
    if criteria.get("fieldType") == "PROPERTY" and isinstance(value, str):
        actual = str((entity.get("properties") or {}).get(str(field).upper(), ""))
        if criteria.get("useWildcards"):
            pattern = ".*".join(re.escape(part) for part in value.split("*"))
            return re.fullmatch(pattern, actual, re.IGNORECASE | re.DOTALL) is not None
        return actual == value
    if field in ("code", "perm_id", "permId", "identifier", "id") and isinstance(value, str):
        wanted = value.upper()
        candidates = {str(entity.get(k, "")).upper() for k in ("code", "permId", "identifier")}
        return wanted in candidates
    children = criteria.get("criteria") or []
    if not children:
        return True
    results = [matches(entity, c) for c in children]
    return any(results) if criteria.get("operator") == "OR" else all(results)
