"""Calendar helpers against pandas references."""

from __future__ import annotations

import pandas as pd
import pytest

from tracking_pipeline.trading_calendar import month_ends, nyse_sessions


def test_month_ends_are_each_months_last_day_plus_the_latest():
    sessions = nyse_sessions()
    for start, end in [("2018-01-02", "2023-10-27"), ("2019-05-31", "2019-05-31"), ("2020-02-03", "2020-02-14")]:
        days = sessions[(sessions >= start) & (sessions <= end)]
        want = pd.Series(days, index=days).groupby(days.to_period("M")).max()
        got = month_ends(days)
        assert list(got) == list(pd.DatetimeIndex(want.to_numpy()).union(days[-1:]))
    assert len(month_ends(sessions[:0])) == 0


@pytest.mark.parametrize("first, last", [("2006-01-03", None), ("2018-01-02", "2023-10-27")])
def test_history_mapping_on_sessions_equals_dagsters(first, last):
    """`require_history` counts a dependency's partitions on the NYSE sessions; Dagster's own mapping (which steps
    over the holidays excluded from the partitions) gives the same keys: ranges of one day to 300 days, at the
    first partitions (clipped look-backs) and anywhere, for the mappings the project uses."""
    import random

    import dagster as dg

    from tracking_pipeline.defs.history import PREVIOUS_DAY, mapped_keys
    from tracking_pipeline.defs.partitions import trading_day_partitions

    partitions = trading_day_partitions(first, last)
    keys = partitions.get_partition_keys()
    mappings = [dg.IdentityPartitionMapping(), PREVIOUS_DAY, dg.TimeWindowPartitionMapping(start_offset=-252),
                dg.TimeWindowPartitionMapping(start_offset=-2, end_offset=-1)]
    pick = random.Random(7)
    ranges = [(0, 0), (0, 2), (1, 1), (len(keys) - 1, len(keys) - 1)]
    ranges += [(i, min(len(keys) - 1, i + pick.choice([0, 1, 5, 300]))) for i in pick.sample(range(len(keys)), 40)]
    for i, j in ranges:
        key_range = dg.PartitionKeyRange(keys[i], keys[j])
        subset = partitions.empty_subset().with_partition_key_range(partitions, key_range)
        for mapping in mappings:
            want = mapping.get_upstream_mapped_partitions_result_for_partitions(
                subset, partitions, partitions).partitions_subset.get_partition_keys()
            assert mapped_keys(mapping, partitions, key_range) == list(want), (key_range, mapping)
