"""Local Spark with Apache Iceberg, for running the generated Glue jobs for real.

The Iceberg Spark runtime (3.5_2.12, 1.10.2) comes from the PyPI wheel
`snowpark-connect-deps-iceberg`, which leaves out the runtime's relocated Jackson; that piece is
re-made here from the Jackson jars PySpark ships, relocated with Debian's jarjar
(`libjarjar-java`), and cached in CONTRACTC_JARS (default ~/.cache/contractc/jars). Anything
missing is an error that says what to install: these tests never skip.

Tables are created from the generated Iceberg definitions (`iceberg/*.json`) by Iceberg Java's
own parsers, in a Hadoop catalog on the local file system, so their field ids, partition specs,
sort orders and properties are exactly the generated ones.
"""

import glob
import json
import os
import shutil
import subprocess
import tempfile
import zipfile

JACKSON_VERSION = "2.15.2"
RUNTIME_JAR = "iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
JARJAR = "/usr/share/java/jarjar.jar"


class MissingPart(RuntimeError):
    """A part the Spark tests need is not installed."""


def _jars_dir():
    path = os.environ.get("CONTRACTC_JARS") or os.path.expanduser("~/.cache/contractc/jars")
    os.makedirs(path, exist_ok=True)
    return path


def _runtime_jar():
    try:
        import snowpark_connect_deps_iceberg
    except ImportError as error:
        raise MissingPart("pip install snowpark-connect-deps-iceberg (tests/requirements.txt)") from error
    path = os.path.join(os.path.dirname(snowpark_connect_deps_iceberg.__file__), "jars", RUNTIME_JAR)
    if not os.path.exists(path):
        raise MissingPart("%s is not in snowpark-connect-deps-iceberg" % RUNTIME_JAR)
    return path


def _shaded_jackson():
    """Jackson relocated to where the Iceberg runtime looks for it."""
    out = os.path.join(_jars_dir(), "iceberg-shaded-jackson-%s.jar" % JACKSON_VERSION)
    if os.path.exists(out):
        return out
    if not os.path.exists(JARJAR):
        raise MissingPart("apt-get install libjarjar-java (for %s)" % JARJAR)
    import pyspark

    pyspark_jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
    with tempfile.TemporaryDirectory() as work:
        merged = os.path.join(work, "jackson.jar")
        seen = set()
        with zipfile.ZipFile(merged, "w") as target:
            for name in ("core", "databind", "annotations"):
                source = os.path.join(pyspark_jars, "jackson-%s-%s.jar" % (name, JACKSON_VERSION))
                with zipfile.ZipFile(source) as jar:
                    for entry in jar.namelist():
                        if entry.startswith("META-INF/") or entry in seen or entry.endswith("/"):
                            continue
                        seen.add(entry)
                        target.writestr(entry, jar.read(entry))
        rules = os.path.join(work, "rules.txt")
        with open(rules, "w") as f:
            f.write("rule com.fasterxml.jackson.** org.apache.iceberg.shaded.com.fasterxml.jackson.@1\n")
        partial = out + ".partial"
        subprocess.run(["java", "-jar", JARJAR, "process", rules, merged, partial], check=True)
        os.replace(partial, out)
    return out


def jars():
    return [_runtime_jar(), _shaded_jackson()]


def session(warehouse, catalog, settings):
    """A local Spark session with an Iceberg Hadoop catalog `catalog` at `warehouse` and the
    job's own session settings."""
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("contractc-glue-job")
        .config("spark.jars", ",".join(jars()))
        .config("spark.sql.catalog.%s" % catalog, "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.%s.type" % catalog, "hadoop")
        .config("spark.sql.catalog.%s.warehouse" % catalog, "file://" + os.path.abspath(warehouse))
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def create_table(spark, warehouse, database, definition):
    """Creates the table a generated `iceberg/*.json` defines, with Iceberg Java's parsers.

    `Catalog.createTable` would give the columns fresh ids; the contract's ids are the point, so
    the table's first metadata is built as parsed and written where a Hadoop catalog keeps it.
    """
    jvm = spark._jvm
    iceberg = jvm.org.apache.iceberg
    location = os.path.join(os.path.abspath(warehouse), database, definition["name"])
    metadata_dir = os.path.join(location, "metadata")
    if os.path.exists(os.path.join(metadata_dir, "version-hint.text")):
        return
    os.makedirs(metadata_dir, exist_ok=True)
    schema = iceberg.SchemaParser.fromJson(json.dumps(definition["schema"]))
    spec = iceberg.PartitionSpecParser.fromJson(schema, json.dumps(definition["partition-spec"]))
    properties = jvm.java.util.HashMap()
    for key, value in definition["properties"].items():
        properties.put(key, value)
    builder = (
        iceberg.TableMetadata.buildFromEmpty(int(definition["properties"].get("format-version", "2")))
        .setLocation("file://" + location)
        .setCurrentSchema(schema, schema.highestFieldId())
        .setDefaultPartitionSpec(spec)
        .setProperties(properties)
    )
    if "write-order" in definition:
        order = iceberg.SortOrderParser.fromJson(schema, json.dumps(definition["write-order"]))
    else:
        order = iceberg.SortOrder.unsorted()
    builder = builder.setDefaultSortOrder(order)
    metadata = builder.build()
    path = os.path.join(metadata_dir, "v1.metadata.json")
    iceberg.TableMetadataParser.write(metadata, iceberg.Files.localOutput(jvm.java.io.File(path)))
    with open(os.path.join(metadata_dir, "version-hint.text"), "w") as f:
        f.write("1")


def latest_metadata(warehouse, database, table):
    """The current metadata file of a Hadoop-catalog table (for pyiceberg's StaticTable)."""
    metadata = os.path.join(warehouse, database, table, "metadata")
    with open(os.path.join(metadata, "version-hint.text")) as f:
        version = f.read().strip()
    return os.path.join(metadata, "v%s.metadata.json" % version)


def reset(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def scripts(root):
    return sorted(glob.glob(os.path.join(root, "generated", "*", "glue", "streaming_job.py")))
