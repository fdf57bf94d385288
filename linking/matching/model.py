"""The Splink model for Japanese legacy records: one definition for DuckDB and Spark.

Trained parameters travel between backends as m/u probabilities laid onto the model
built for the target dialect (the SQL differs between DuckDB and Spark, the levels
do not), so a model trained on DuckDB scores identically on Spark."""

from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import Linker, SettingsCreator, block_on

# A pair at or above this probability joins a group: more likely than not the same
# person. Groups only go to staff review (sorted by probability), never to a link.
THRESHOLD = 0.5


def _levels(column: str, *levels) -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name=column,
        comparison_levels=[cll.NullLevel(column), *levels, cll.ElseLevel()],
    )


def creator() -> SettingsCreator:
    """Comparisons per field, weakest evidence last; blocking rules keep the pairs
    near-linear in the number of records (every rule needs an equal rare key)."""
    comparisons = [
        _levels("name_key", cll.ExactMatchLevel("name_key")),
        _levels(
            "surname_kana",
            cll.ExactMatchLevel("surname_kana", term_frequency_adjustments=True),
            cll.LevenshteinLevel("surname_kana", 1),
        ),
        _levels(
            "given_kana",
            cll.ExactMatchLevel("given_kana"),
            cll.LevenshteinLevel("given_kana", 1),
        ),
        _levels("email", cll.ExactMatchLevel("email"), cll.ExactMatchLevel("email_local")),
        _levels("phone", cll.ExactMatchLevel("phone")),
        _levels(
            "birth",
            cll.ExactMatchLevel("birth"),
            cll.ColumnsReversedLevel("birth", "birth_swapped", symmetrical=True),
            cll.LevenshteinLevel("birth", 1),
        ),
        _levels("postal", cll.ExactMatchLevel("postal"), cll.ExactMatchLevel("prefecture")),
    ]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=[
            block_on("phone"),
            block_on("email"),
            block_on("email_local"),
            block_on("surname_kana", "birth"),
            block_on("given_kana", "birth"),
            block_on("kana", "postal"),
        ],
        retain_intermediate_calculation_columns=True,
        retain_matching_columns=False,
        additional_columns_to_retain=["service"],
    )


def train(linker: Linker) -> None:
    """Unsupervised: the prior from records sharing a phone or email, u from random
    pairs, m by EM in two sessions whose blocking keys cover every comparison."""
    training = linker.training
    training.estimate_probability_two_random_records_match(
        [block_on("phone"), block_on("email")], recall=0.6
    )
    training.estimate_u_using_random_sampling(max_pairs=2_000_000, seed=1)
    training.estimate_parameters_using_expectation_maximisation(block_on("phone"))
    training.estimate_parameters_using_expectation_maximisation(block_on("email"))


def trained_settings(linker: Linker) -> dict[str, Any]:
    return linker.misc.save_model_to_json()


def for_dialect(trained: dict[str, Any], dialect: str) -> dict[str, Any]:
    """The model built for `dialect`, carrying the trained parameters."""
    settings = creator().create_settings_dict(dialect)
    settings["probability_two_random_records_match"] = trained[
        "probability_two_random_records_match"
    ]
    for target, source in zip(settings["comparisons"], trained["comparisons"], strict=True):
        levels = zip(target["comparison_levels"], source["comparison_levels"], strict=True)
        for level, trained_level in levels:
            for key in ("m_probability", "u_probability", "tf_minimum_u_value"):
                if key in trained_level:
                    level[key] = trained_level[key]
    return settings


def comparison_names() -> list[str]:
    return [
        c["output_column_name"] for c in creator().create_settings_dict("duckdb")["comparisons"]
    ]
