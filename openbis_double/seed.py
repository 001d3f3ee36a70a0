"""The fixed content every double starts with (documented in README.md).

Tests import these names instead of repeating literals, so a change here shows up
everywhere at once.
"""

import hashlib
import struct
import zlib

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


def _png(width, height, pixel):
    """A PNG (8-bit RGB) of pixel(x, y) -> (r, g, b); the standard library is enough."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(
        b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# A small micrograph-like picture for the trial (make trial): rings on a gradient.
IMAGE_DATASET = "20240115093000000-6"
IMAGE_PATH = "original/micrograph.png"
IMAGE_BYTES = _png(
    96,
    64,
    lambda x, y: (
        (x * 8 + y * 2) % 256,
        int(127 + 127 * (((x - 48) ** 2 + (y - 32) ** 2) // 40 % 2)),
        (y * 4) % 256,
    ),
)

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
    IMAGE_DATASET: {
        "type": "RAW_DATA",
        "experiment": EXPERIMENT,
        "sample": None,
        "properties": {"$NAME": "Micrograph", "NOTES": "Seeded image"},
        "files": {IMAGE_PATH: IMAGE_BYTES},
    },
}
