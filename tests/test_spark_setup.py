"""scripts/setup_spark.sh: idempotent, and the Jackson it relocates is complete and fully relocated."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from akko_assets.lakehouse import spark as spark_mod

pytestmark = pytest.mark.spark
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def _installed():
    try:
        spark_mod.check_setup()
    except spark_mod.SparkSetupError as exc:
        pytest.skip(f"{exc} (the Spark path is optional: bash scripts/setup_spark.sh installs it)")


def test_rerun_changes_nothing():
    jar = spark_mod.jars_dir() / spark_mod.SHADED_JACKSON_JAR
    before = jar.stat().st_mtime_ns
    out = subprocess.run(["bash", "scripts/setup_spark.sh"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    steps = [line for line in out.stdout.splitlines() if line.startswith("setup_spark: ")]
    assert sum(" ok " in line for line in steps) == 6, steps  # java, pyspark, JDBC, jarjar, runtime, Jackson
    assert not any(" done " in line for line in steps), steps
    assert jar.stat().st_mtime_ns == before


def test_relocated_jackson_is_complete_and_private():
    with zipfile.ZipFile(spark_mod.jars_dir() / spark_mod.SHADED_JACKSON_JAR) as zf:
        names = zf.namelist()
        prefix = "org/apache/iceberg/shaded/com/fasterxml/jackson/"
        # The class the seed's NoClassDefFoundError named, and one per relocated module.
        for cls in ("core/JsonFactoryBuilder", "databind/ObjectMapper", "annotation/JsonProperty",
                    "datatype/jsr310/JavaTimeModule"):
            assert f"{prefix}{cls}.class" in names
        assert all(n.startswith((prefix, "META-INF/")) for n in names)
        assert not any(n.startswith(("META-INF/services/", "META-INF/versions/")) for n in names)
        # No class still points at the public Jackson packages (it would bind to Spark's own copy).
        unrelocated = [n for n in names if n.endswith(".class")
                       and re.search(rb"(?<!org/apache/iceberg/shaded/)com/fasterxml/jackson/", zf.read(n))]
        assert unrelocated == []
