"""Train, predict and cluster with Splink on DuckDB (default) or Spark (local or a
cluster, settings.MATCHING_SPARK_MASTER). Input is features.table(); output is the
groups of two or more records and the scored links inside them."""

import os
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from splink import DuckDBAPI, Linker

from linking.matching import model


@dataclass
class Link:
    a: int
    b: int
    probability: float
    # Splink's match weight per comparison (log2 of its Bayes factor, the term
    # frequency adjustment included): what each field said for or against.
    weights: dict[str, float]


@dataclass
class Result:
    groups: list[list[int]]
    links: dict[int, list[Link]] = field(default_factory=dict)  # by the group's index
    pairs_scored: int = 0


def db_api(backend: str):
    """Splink's clustering builds each step's query on the steps before it; on Spark,
    persisting them keeps those plans (hundreds of broadcast joins, out of a 4g heap on
    300 records), so each step is checkpointed, which cuts them."""
    if backend == "duckdb":
        return DuckDBAPI()
    if backend == "spark":
        from splink import SparkAPI

        return SparkAPI(
            spark_session=spark_session(),
            break_lineage_method="checkpoint",
            num_partitions_on_repartition=settings.MATCHING_SPARK_PARTITIONS,
        )
    raise ValueError(f"unknown matching backend {backend!r}")


def spark_session():
    """pyspark's session (local mode by default); needs Java 17+ on the PATH or JAVA_HOME."""
    from pyspark.sql import SparkSession

    java_home = os.environ.get("JAVA_HOME", "")
    if not shutil.which("java") and not (java_home and Path(java_home, "bin", "java").exists()):
        raise ImproperlyConfigured("The Spark backend needs Java 17+: set JAVA_HOME or PATH.")
    checkpoints = settings.MATCHING_SPARK_CHECKPOINT_DIR or tempfile.mkdtemp(
        prefix="matching-spark-"
    )
    session = (
        SparkSession.builder.master(settings.MATCHING_SPARK_MASTER)
        .appName("unified-id-matching")
        .config("spark.sql.shuffle.partitions", str(settings.MATCHING_SPARK_PARTITIONS))
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", settings.MATCHING_SPARK_DRIVER_MEMORY)
        .getOrCreate()
    )
    session.sparkContext.setCheckpointDir(checkpoints)
    return session


def train(table: pa.Table) -> dict[str, Any]:
    """Trained parameters (Splink's settings JSON), trained on DuckDB."""
    api = DuckDBAPI()
    linker = Linker(api.register(table), model.creator(), log_level="WARNING")
    model.train(linker)
    return model.trained_settings(linker)


def score(table: pa.Table, trained: dict[str, Any], backend: str = "duckdb") -> Result:
    """Predict and cluster with trained parameters on `backend`."""
    api = db_api(backend)
    dialect = "spark" if backend == "spark" else "duckdb"
    linker = Linker(api.register(table), model.for_dialect(trained, dialect), log_level="WARNING")
    predictions = linker.inference.predict(threshold_match_probability=model.THRESHOLD)
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=model.THRESHOLD
    ).as_dict()
    members: dict[Any, list[int]] = defaultdict(list)
    for uid, cluster in zip(clusters["unique_id"], clusters["cluster_id"], strict=True):
        members[cluster].append(int(uid))
    groups = sorted(sorted(ids) for ids in members.values() if len(ids) > 1)
    result = Result(groups=groups)
    index = {uid: i for i, ids in enumerate(groups) for uid in ids}
    edges = predictions.as_dict()
    result.pairs_scored = len(edges["unique_id_l"])
    # Per comparison: its weights, and its term frequency adjustments if it has them.
    columns = [
        (name, edges[f"mw_{name}"], edges.get(f"mw_tf_adj_{name}"))
        for name in model.comparison_names()
    ]
    for row in range(result.pairs_scored):
        a, b = int(edges["unique_id_l"][row]), int(edges["unique_id_r"][row])
        weights = {
            name: round(weight[row] + (tf[row] if tf is not None else 0.0), 2)
            for name, weight, tf in columns
        }
        link = Link(min(a, b), max(a, b), round(edges["match_probability"][row], 6), weights)
        result.links.setdefault(index[a], []).append(link)
    return result
