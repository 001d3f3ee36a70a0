"""The fixed content every double starts with (documented in README.md).

Tests import these names instead of repeating literals, so a change here shows up
everywhere at once.
"""

import hashlib

USERS = {
    "admin": "admin-password",
    # Mixed case on purpose: openBIS keeps the userId exactly as registered.
    "JDoe": "jdoe-password",
    "alice": "alice-password",
}

SPACE = "LAB"
PROJECT = "/LAB/PROJ"
PROJECT_PERM_ID = "20240115093000000-1"
EXPERIMENT = "/LAB/PROJ/EXP1"
EXPERIMENT_PERM_ID = "20240115093000000-2"
SAMPLE = "/LAB/PROJ/SAMPLE1"
SAMPLE_PERM_ID = "20240115093000000-3"

CSV_DATASET = "20240115093000000-4"
CSV_PATH = "original/measurements.csv"
CSV_BYTES = b"time_s,temperature_c,signal_mv\n" + b"".join(
    b"%d,%.3f,%.3f\n" % (i, i * 0.5, (i * 7919 % 1000) / 10.0) for i in range(200)
)

BINARY_DATASET = "20240115093000000-5"
BINARY_PATH = "original/spectrum.bin"
# A few MB that do not fit in one fast-download chunk, and whose size is not a
# multiple of the chunk size; shake_256 makes them the same on every machine.
BINARY_BYTES = hashlib.shake_256(b"openbis-double spectrum").digest(3 * 1024 * 1024 + 4321)

DATA_STORE_CODE = "DSS1"

# code -> (label, dataType); no controlled vocabularies, so pyBIS needs no term look-ups.
PROPERTY_TYPES = {
    "$NAME": ("Name", "VARCHAR"),
    "NOTES": ("Notes", "MULTILINE_VARCHAR"),
    "$HISTORY_ID": ("History ID", "VARCHAR"),
}
DATASET_TYPES = {
    "RAW_DATA": ["$NAME", "NOTES"],
    "ANALYSIS_NOTEBOOK": ["$NAME", "NOTES", "$HISTORY_ID"],
}
EXPERIMENT_TYPES = {"COLLECTION": ["$NAME"]}
SAMPLE_TYPES = {"EXPERIMENTAL_STEP": ["$NAME", "NOTES"]}

# Seed datasets: permId -> description used to build the DTOs.
DATASETS = {
    CSV_DATASET: {
        "type": "RAW_DATA",
        "experiment": EXPERIMENT,
        "sample": None,
        "properties": {"$NAME": "Temperature log", "NOTES": "Seeded CSV file"},
        "files": {CSV_PATH: CSV_BYTES},
    },
    BINARY_DATASET: {
        "type": "RAW_DATA",
        "experiment": EXPERIMENT,
        "sample": SAMPLE,
        "properties": {"$NAME": "Spectrum", "NOTES": "Seeded binary file"},
        "files": {BINARY_PATH: BINARY_BYTES},
    },
}
