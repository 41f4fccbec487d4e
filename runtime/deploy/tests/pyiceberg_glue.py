"""Loads Iceberg tables through pyiceberg's Glue catalog (an independent reader of what
`contract-deploy` registered) and prints what it sees as JSON, for the Rust test to compare.

Usage: python pyiceberg_glue.py ENDPOINT_URL REGION DATABASE.TABLE...

Prints one JSON object: {"db.table": {"schema": ..., "spec": ..., "sort_order": ...,
"properties": ..., "metadata_location": ...}}. Exits 1 (with the error) if a table does not load.
"""

import json
import sys

from pyiceberg.catalog import load_catalog


def main(argv):
    endpoint, region, names = argv[1], argv[2], argv[3:]
    catalog = load_catalog(
        "glue",
        **{
            "type": "glue",
            "glue.endpoint": endpoint,
            "glue.region": region,
            "glue.access-key-id": "testing",
            "glue.secret-access-key": "testing",
            "s3.endpoint": endpoint,
            "s3.region": region,
            "s3.access-key-id": "testing",
            "s3.secret-access-key": "testing",
        },
    )
    seen = {}
    for name in names:
        try:
            table = catalog.load_table(name)
        except Exception as error:  # report which table and why, then fail
            print("%s: pyiceberg cannot load it: %s: %s" % (name, type(error).__name__, error), file=sys.stderr)
            return 1
        seen[name] = {
            "schema": json.loads(table.schema().model_dump_json(by_alias=True)),
            "spec": json.loads(table.spec().model_dump_json(by_alias=True)),
            "sort_order": json.loads(table.sort_order().model_dump_json(by_alias=True)),
            "properties": dict(table.properties),
            "metadata_location": table.metadata_location,
            "schemas": len(table.metadata.schemas),
        }
    print(json.dumps(seen))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
